"""Identity terms, templates, the shipped data files and token masks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from governance.errors import InputError
from governance.text.identity import IDENTITY_TERMS, TEMPLATES, category_of, fill, swap_term, term_spans
from governance.text.tokens import check_texts, encode_texts, term_token_mask
from tests.text.helpers import DATA


def test_fill_swap_and_spans() -> None:
    assert fill("a {term} volunteer", "elderly") == "an elderly volunteer"
    assert fill("a {term} volunteer", "blind") == "a blind volunteer"
    assert swap_term("My Muslim neighbour, muslim!", "muslim", "hindu") == "My hindu neighbour, hindu!"
    assert swap_term("muslims", "muslim", "hindu") == "muslims"  # whole words only
    assert term_spans("the old man is old", ["old"]) == [(4, 7), (15, 18)]
    assert category_of("Deaf") == "disability" and category_of("table") is None


def test_shipped_data_is_what_the_script_writes(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sentiment", DATA / "make_sentiment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("train.csv", "holdout.csv", "eval.csv"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_eval_rows_of_a_pair_differ_only_in_the_identity_term() -> None:
    frame = pd.read_csv(DATA / "eval.csv")
    n_terms = sum(len(t) for t in IDENTITY_TERMS.values())
    assert len(frame) == len(TEMPLATES) * n_terms
    for _, group in frame.groupby("pair_id"):
        assert len(group) == n_terms and group["label"].nunique() == 1
        masked = {
            swap_term(t, term, "<T>").replace("an <T>", "a <T>")
            for t, term in zip(group["text"], group["identity_term"])
        }
        assert len(masked) == 1
        assert all(category_of(t) == c for t, c in zip(group["identity_term"], group["identity_category"]))
    train = pd.read_csv(DATA / "train.csv")
    assert not set(train["text"]) & set(frame["text"])
    assert (train["identity_category"] == "none").all()


def test_check_texts_names_the_row() -> None:
    check_texts(pd.DataFrame({"t": ["ok", "fine"]}), "t", "f.csv")
    with pytest.raises(InputError, match=r"non-string value 3 \(row 1\)"):
        check_texts(pd.DataFrame({"t": ["ok", 3]}), "t", "f.csv")
    with pytest.raises(InputError, match=r"empty or missing text \(row 0\)"):
        check_texts(pd.DataFrame({"t": [None, "x"]}), "t", "f.csv")


def test_term_token_mask_marks_the_term_tokens(tiny_bert: Path) -> None:
    from governance.models.hf import load_tokenizer

    tokenizer = load_tokenizer(tiny_bert)
    texts = ["my deaf neighbour is kind", "the chef"]
    encoded = encode_texts(tokenizer, texts, 32)
    mask = term_token_mask(encoded.offsets, [term_spans(texts[0], ["deaf"]), []])
    tokens = tokenizer.convert_ids_to_tokens(encoded.ids[0].tolist())
    assert [t for t, m in zip(tokens, mask[0]) if m] == ["deaf"]
    assert not any(mask[1])


def test_reference_spec_takes_its_nonmembers_from_the_holdout() -> None:
    """audits/minilm-sentiment.yaml: the privacy audit's non-members are held-out general
    sentences (the train distribution), every one unseen, and the preflight accepts them."""
    from governance.audit.privacy import PrivacyAudit, load_nonmembers, nonmember_path
    from governance.data.loading import load_bundle
    from governance.spec import load_spec

    spec = load_spec(DATA.parents[1] / "minilm-sentiment.yaml")
    bundle = load_bundle(spec)
    options = dict(spec.audits["privacy"] or {})
    assert nonmember_path(spec, options) == (DATA / "holdout.csv").resolve()
    PrivacyAudit().preflight(spec, bundle, options)
    held_out = load_nonmembers(spec, bundle, options)
    assert held_out is not None and bundle.train is not None
    assert set(held_out["identity_category"]) == set(bundle.train["identity_category"]) == {"none"}
    assert held_out["label"].value_counts().to_dict() == {"positive": 106, "negative": 106}
