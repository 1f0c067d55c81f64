"""Token attributions of text models: our batched LayerIG against Captum's, completeness, shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.text.helpers import text_context, tiny_handle
from tests.text.tiny_bert import write_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_fast_layer_ig_equals_captum_layer_integrated_gradients(tiny_bert: Path, method: str) -> None:
    import torch
    from captum.attr import LayerIntegratedGradients

    from governance.audit._layer_ig import layer_integrated_gradients
    from governance.audit._text_attribution import text_baseline

    handle = tiny_handle(tiny_bert, seed=3)
    texts = ["i am a muslim person and i love my life", "the deaf chef cooked an awful meal for us", "kind"]
    ids = handle.encode_texts(texts)
    base = text_baseline(ids, handle.tokenizer, handle.pad_id)
    target = torch.tensor([1, 0, 1])
    layer = handle.embedding_layer
    ours = layer_integrated_gradients(
        handle.module, layer, ids, base, target, n_steps=16, method=method, chunk_size=2
    )
    theirs = LayerIntegratedGradients(handle.module, layer).attribute(
        ids, baselines=base, target=target, n_steps=16, method=method
    )
    assert ours.shape == theirs.shape == (3, ids.shape[1], 32)
    torch.testing.assert_close(ours, theirs.detach(), atol=1e-5, rtol=1e-4)


def test_baseline_keeps_special_tokens_and_padding(tiny_bert: Path) -> None:
    from governance.audit._text_attribution import text_baseline

    handle = tiny_handle(tiny_bert)
    ids = handle.encode_texts(["i love my life", "kind"])
    base = text_baseline(ids, handle.tokenizer, handle.pad_id)
    tok = handle.tokenizer
    assert base[1].tolist() == [tok.cls_token_id, tok.mask_token_id, tok.sep_token_id, 0, 0, 0]
    assert (base != 0).tolist() == (ids != 0).tolist()  # same attention mask along the path


def test_audit_completeness_share_and_examples(tiny_bert: Path, tmp_path: Path) -> None:
    from governance.audit.registry import create_audit

    context = text_context(
        tiny_bert, tmp_path, "attribution", {"max_rows": 12, "n_steps": 64, "term_column": "identity_term"}
    )
    section = create_audit("attribution").run(context)
    m = section.metrics
    assert m["attribution.rows"] == 12
    # Completeness: sum of token attributions = f(x)[t] - f(baseline)[t], up to quadrature error.
    assert m["attribution.completeness_gap"] < 1e-3
    examples = section.details["token_examples"]
    assert len(examples) == 6
    share = m["attribution.sensitive_share"]
    assert 0 < share < 1
    for ex in examples:
        assert len(ex["tokens"]) == len(ex["attributions"]) == len(ex["identity_token"])
        assert ex["tokens"][0] == "[CLS]" and ex["attributions"][0] == 0.0  # kept in the baseline
        marked = [t for t, flag in zip(ex["tokens"], ex["identity_token"]) if flag]
        assert len(marked) == 1 and marked[0] in ex["text"].split()
    groups = {row["group"] for row in section.tables["sensitive_share_by_group"]}
    assert groups <= {"gender", "religion", "nationality", "age", "disability"}


def test_sensitive_share_is_the_identity_tokens_share_of_total_attribution(
    tiny_bert: Path, tmp_path: Path
) -> None:
    from governance.audit.registry import create_audit

    context = text_context(
        tiny_bert,
        tmp_path,
        "attribution",
        {"max_rows": 5, "n_steps": 16, "term_column": "identity_term", "examples": 5},
    )
    section = create_audit("attribution").run(context)
    num = den = 0.0
    for ex in section.details["token_examples"]:
        a = np.abs(np.asarray(ex["attributions"]))
        num += float(a[np.asarray(ex["identity_token"])].sum())
        den += float(a.sum())
    # Recomputed by hand from the examples (rounded to 6 decimals in details).
    assert section.metrics["attribution.sensitive_share"] == pytest.approx(num / den, abs=1e-4)


def test_captum_engine_gives_the_same_section_numbers(tiny_bert: Path, tmp_path: Path) -> None:
    from governance.audit.registry import create_audit

    opts = {"max_rows": 4, "n_steps": 8, "term_column": "identity_term"}
    fast = create_audit("attribution").run(text_context(tiny_bert, tmp_path / "a", "attribution", opts))
    slow = create_audit("attribution").run(
        text_context(tiny_bert, tmp_path / "b", "attribution", {**opts, "engine": "captum"})
    )
    for key in ("attribution.sensitive_share", "attribution.completeness_gap"):
        assert fast.metrics[key] == pytest.approx(slow.metrics[key], abs=1e-5)


def test_bad_term_column_is_bad_input(tiny_bert: Path, tmp_path: Path) -> None:
    from governance.audit.registry import create_audit
    from governance.errors import InputError

    context = text_context(tiny_bert, tmp_path, "attribution", {"term_column": "nope"})
    with pytest.raises(InputError, match="term_column"):
        create_audit("attribution").run(context)
