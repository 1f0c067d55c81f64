"""Robustness audit: the fast attacks against ART's own, masks, metrics and bad options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from governance.audit._attacks import (
    AttackSetting,
    art_fgsm,
    art_pgd,
    create_attack,
    register_attack,
    torch_fgsm,
    torch_pgd,
)
from governance.audit._inputs import class_indices, perturbable_mask
from governance.audit.robustness import RobustnessAudit
from governance.errors import InputError
from tests.audit.tiny_models import image_handle, make_context, tabular_handle


def _tabular_batch(n: int = 150) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, np.ndarray | None]:
    handle, bundle = tabular_handle()
    frame = bundle.eval.iloc[:n]
    x = handle.encode(frame)
    y = torch.as_tensor(class_indices(handle.classes, frame["risk"].tolist()))
    return handle.module, x, y, perturbable_mask(handle, tuple(x.shape))


@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_fast_pgd_matches_art_pgd_on_tabular_with_mask(eps: float) -> None:
    module, x, y, mask = _tabular_batch()
    assert mask is not None and mask.sum() == 3  # only the three numeric columns move
    setting = AttackSetting(eps=eps, steps=10, step_size=2.5 * eps / 10, mask=mask, batch_size=64)
    ours = torch_pgd(module, x, y, setting)
    oracle = art_pgd(module, x, y, setting)
    torch.testing.assert_close(ours, oracle, rtol=0, atol=1e-5)
    assert torch.equal(ours[:, mask == 0], x[:, mask == 0])  # one-hot columns untouched
    assert float((ours - x).abs().max()) <= eps + 1e-6
    assert not torch.equal(ours, x)


def test_fast_fgsm_matches_art_fgm() -> None:
    module, x, y, mask = _tabular_batch()
    setting = AttackSetting(eps=0.2, steps=1, step_size=0.2, mask=mask)
    torch.testing.assert_close(
        torch_fgsm(module, x, y, setting), art_fgsm(module, x, y, setting), rtol=0, atol=1e-5
    )


def test_fast_pgd_matches_art_on_images_with_clipping() -> None:
    handle, bundle = image_handle()
    frame = bundle.eval.iloc[:40]
    x = handle.encode(frame)
    y = torch.as_tensor(class_indices(handle.classes, frame["label"].tolist()))
    setting = AttackSetting(eps=0.1, steps=5, step_size=0.03, clip=(0.0, 1.0), batch_size=16)
    ours = torch_pgd(handle.module, x, y, setting)
    torch.testing.assert_close(ours, art_pgd(handle.module, x, y, setting), rtol=0, atol=1e-5)
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0


def test_random_init_is_seeded_and_stays_in_the_ball() -> None:
    module, x, y, mask = _tabular_batch()
    setting = AttackSetting(eps=0.1, steps=3, step_size=0.05, mask=mask, random_init=True, seed=3)
    a, b = torch_pgd(module, x, y, setting), torch_pgd(module, x, y, setting)
    assert torch.equal(a, b)
    assert float((a - x).abs().max()) <= 0.1 + 1e-6


def test_audit_accuracy_equals_accuracy_on_arts_adversarial_examples() -> None:
    handle, bundle = tabular_handle()
    section = RobustnessAudit().run(make_context(handle, bundle, {"eps": [0.2], "hopskipjump_rows": 0}))
    module, x, y, mask = _tabular_batch(n=len(bundle.eval))
    clean = (module(x).argmax(1) == y).float().mean().item()
    for attack, steps, ratio in (("pgd", 10, 2.5), ("fgsm", 1, 10.0)):
        setting = AttackSetting(eps=0.2, steps=steps, step_size=ratio * 0.2 / steps, mask=mask)
        adv = (art_pgd if attack == "pgd" else art_fgsm)(module, x, y, setting)
        acc = (module(adv).argmax(1) == y).float().mean().item()
        assert section.metrics[f"robustness.{attack}.eps_0.2.accuracy"] == pytest.approx(acc)
        assert section.metrics[f"robustness.{attack}.eps_0.2.accuracy_drop"] == pytest.approx(clean - acc)
    assert section.metrics["robustness.pgd.eps_0.2.accuracy"] < clean


def test_art_engine_gives_the_same_metrics() -> None:
    handle, bundle = tabular_handle()
    opts = {"eps": [0.1, 0.3], "hopskipjump_rows": 0, "noise_sigma": []}
    fast = RobustnessAudit().run(make_context(handle, bundle, opts))
    art = RobustnessAudit().run(make_context(handle, bundle, {**opts, "engine": "art"}))
    assert fast.metrics == pytest.approx(art.metrics)


def test_group_table_and_worst_group_drop() -> None:
    handle, bundle = tabular_handle()
    section = RobustnessAudit().run(
        make_context(
            handle, bundle, {"eps": [0.3], "attacks": ["pgd"], "hopskipjump_rows": 0, "min_group_size": 80}
        )
    )
    rows = [r for r in section.tables["accuracy_by_group"] if r["perturbation"] == "pgd"]
    assert {(r["attribute"], r["group"]) for r in rows} == {
        ("sex", "female"),
        ("sex", "male"),
        ("age_group", "over_35"),
        ("age_group", "35_or_under"),
    }
    eval_ = bundle.eval
    for r in rows:
        assert r["n"] == int((eval_[r["attribute"]] == r["group"]).sum())
    expected = max(r["accuracy_drop"] for r in rows if r["n"] >= 80)
    assert section.metrics["robustness.pgd.eps_0.3.worst_group_accuracy_drop"] == pytest.approx(expected)


def test_zero_noise_keeps_clean_accuracy_and_noise_is_seeded() -> None:
    handle, bundle = image_handle()
    opts = {"attacks": [], "noise_sigma": [0.0, 0.4], "hopskipjump_rows": 0}
    a = RobustnessAudit().run(make_context(handle, bundle, opts))
    b = RobustnessAudit().run(make_context(handle, bundle, opts))
    assert a.metrics["robustness.gaussian_noise.sigma_0.accuracy"] == a.metrics["robustness.clean_accuracy"]
    assert a.metrics == b.metrics


def test_hopskipjump_is_seeded_and_finds_label_flips() -> None:
    handle, bundle = tabular_handle()
    opts = {"attacks": [], "noise_sigma": [], "hopskipjump_rows": 8, "hopskipjump_iterations": 2}
    a = RobustnessAudit().run(make_context(handle, bundle, opts))
    b = RobustnessAudit().run(make_context(handle, bundle, opts))
    assert a.details["hopskipjump"]["rows"] == 8
    assert 0.0 < a.metrics["robustness.hopskipjump.success_rate"] <= 1.0  # type: ignore[operator]
    assert a.metrics["robustness.hopskipjump.median_l2"] > 0  # type: ignore[operator]
    assert a.metrics == b.metrics


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"eps": [0.1, -0.2]}, "audits.robustness.eps[1]"),
        ({"attacks": ["pgd", "deepfool"]}, "audits.robustness.attacks[1]"),
        ({"noise_sigma": [-1]}, "audits.robustness.noise_sigma[0]"),
        ({"epsilon": [0.1]}, "audits.robustness.epsilon"),
        ({"engine": "foolbox"}, "audits.robustness.engine"),
    ],
)
def test_bad_options_raise_input_error(options: dict[str, object], field: str) -> None:
    handle, bundle = tabular_handle()
    with pytest.raises(InputError) as info:
        RobustnessAudit().run(make_context(handle, bundle, options))
    assert info.value.field == field
    assert info.value.source == "audits.robustness"


def test_attack_registry_rejects_unknown_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        create_attack("cw")
    with pytest.raises(ValueError, match="already registered"):
        register_attack("pgd", {"fast": torch_pgd})
