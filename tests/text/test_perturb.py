"""Character perturbations: deterministic per seed, rate-accurate, registry behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from governance.text.perturb import create_perturbation, perturb, perturbation_names, register_perturbation

TEXT = "the quick brown fox jumps over the lazy dog and the staff were very kind " * 40


def test_same_seed_same_output_other_seed_other_output() -> None:
    for name in perturbation_names():
        assert perturb([TEXT], name, 0.2, seed=1) == perturb([TEXT], name, 0.2, seed=1)
        assert perturb([TEXT], name, 0.2, seed=1) != perturb([TEXT], name, 0.2, seed=2)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_typo_and_case_change_the_expected_share_of_letters(rate: float) -> None:
    letters = sum(c.isalpha() for c in TEXT)
    for name in ("char_typo", "char_case"):
        (out,) = perturb([TEXT], name, rate, seed=0)
        assert len(out) == len(TEXT)
        changed = sum(a != b for a, b in zip(TEXT, out))
        # Binomial(letters, rate): within 4 standard deviations.
        sd = np.sqrt(letters * rate * (1 - rate))
        assert abs(changed - rate * letters) < 4 * sd, (name, changed, rate * letters)
        # Only letters change; typos stay letters, case flips keep the letter.
        assert all(a == b or a.isalpha() for a, b in zip(TEXT, out))
        if name == "char_case":
            assert out.lower() == TEXT.lower()


@pytest.mark.parametrize("rate", [0.1, 0.4])
def test_whitespace_edits_the_expected_share_of_spaces(rate: float) -> None:
    spaces = TEXT.count(" ")
    (out,) = perturb([TEXT], "whitespace", rate, seed=3)
    assert out.replace(" ", "") == TEXT.replace(" ", "")  # only spaces change
    words_merged = TEXT.count(" ") - out.replace("  ", "\0").count(" ") - out.count("  ")
    doubled = out.count("  ")
    edited = words_merged + doubled
    sd = np.sqrt(spaces * rate * (1 - rate))
    assert abs(edited - rate * spaces) < 4 * sd
    assert words_merged > 0 and doubled > 0


def test_rate_zero_is_identity_and_bad_rate_raises() -> None:
    for name in perturbation_names():
        assert perturb([TEXT, "x"], name, 0.0, seed=0) == [TEXT, "x"]
    with pytest.raises(ValueError, match="rate"):
        perturb([TEXT], "char_typo", 1.5, seed=0)


def test_registry_rejects_unknown_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unknown perturbation"):
        create_perturbation("leet")
    with pytest.raises(ValueError, match="already registered"):
        register_perturbation("char_typo", lambda text, rate, rng: text)
