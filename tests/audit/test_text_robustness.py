"""Text robustness: accuracy and flips under character perturbations, recomputed independently."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from governance.audit._inputs import sample_frame
from governance.text.perturb import perturb
from tests.text.helpers import text_context
from tests.text.tiny_bert import write_tiny_bert


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


def test_metrics_match_predictions_on_the_perturbed_texts(tiny_bert: Path, tmp_path: Path) -> None:
    from governance.audit.registry import create_audit

    options = {"perturbations": ["char_typo", "whitespace"], "rates": [0.0, 0.3], "max_rows": 40}
    context = text_context(tiny_bert, tmp_path, "robustness", options)
    section = create_audit("robustness").run(context)
    m = section.metrics
    handle = context.model
    frame = sample_frame(context.data.eval, 40, 0)  # the audit's own seeded sample
    texts = frame["text"].tolist()
    y = (frame["label"] == "positive").to_numpy().astype(int)
    clean = handle.predict_proba_texts(texts).argmax(1)
    assert m["robustness.clean_accuracy"] == pytest.approx((clean == y).mean())
    # Rate 0 changes nothing.
    assert m["robustness.char_typo.rate_0.flip_rate"] == 0.0
    assert m["robustness.char_typo.rate_0.accuracy_drop"] == 0.0
    # Recompute one cell with the perturbation's own seed rule (seed*1000003 + p*1009 + r).
    noisy = perturb(texts, "char_typo", 0.3, seed=0 * 1_000_003 + 0 * 1009 + 1)
    pred = handle.predict_proba_texts(noisy).argmax(1)
    assert m["robustness.char_typo.rate_0.3.accuracy"] == pytest.approx((pred == y).mean())
    assert m["robustness.char_typo.rate_0.3.flip_rate"] == pytest.approx((pred != clean).mean())
    assert {r["perturbation"] for r in section.tables["accuracy"]} == {"char_typo", "whitespace"}


def test_unknown_perturbation_is_bad_input(tiny_bert: Path, tmp_path: Path) -> None:
    from governance.audit.registry import create_audit
    from governance.errors import InputError

    context = text_context(tiny_bert, tmp_path, "robustness", {"perturbations": ["leet"]})
    with pytest.raises(InputError, match=r"perturbations\[0\]"):
        create_audit("robustness").run(context)


def test_same_seed_same_numbers(tiny_bert: Path, tmp_path: Path) -> None:
    from governance.audit.registry import create_audit

    options = {"perturbations": ["char_case"], "rates": [0.5], "max_rows": 20}
    a = create_audit("robustness").run(text_context(tiny_bert, tmp_path / "a", "robustness", options))
    b = create_audit("robustness").run(text_context(tiny_bert, tmp_path / "b", "robustness", options))
    assert dict(a.metrics) == dict(b.metrics)
    assert np.isfinite(a.metrics["robustness.char_case.rate_0.5.accuracy"])
