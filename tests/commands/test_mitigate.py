"""`governance mitigate`: threshold mitigation from the command line, on a decision log and a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from governance.cli import main
from governance.models.decision_rule import DecisionRule


def _log(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sex = rng.choice(["F", "M"], n, p=[0.4, 0.6])
    y = (rng.random(n) < np.where(sex == "M", 0.7, 0.45)).astype(int)
    score = np.clip(0.4 * y + 0.45 * rng.random(n) + np.where(sex == "M", 0.12, 0.0), 0, 1)
    return pd.DataFrame(
        {
            "outcome": y,
            "sex": sex,
            "age": rng.choice(["young", "old"], n),
            "y_score": score,
            "y_pred": (score > 0.5).astype(int),
        }
    )


def _spec(tmp: Path, frame: pd.DataFrame, mitigation: str) -> Path:
    frame.to_csv(tmp / "log.csv", index=False)
    path = tmp / "spec.yaml"
    path.write_text(
        "name: log\ntask: binary_classification\nseed: 4\n"
        "data: {eval: log.csv, label: outcome, sensitive: [sex, age]}\n"
        f"model: {{predictions: log.csv}}\naudits: {{fairness: {{}}}}\nmitigation: {mitigation}\n"
    )
    return path


class _Identity(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        s = np.asarray(X, dtype=float).reshape(-1)
        return np.column_stack([1 - s, s])


def test_decision_log_mitigation_equals_fairlearn_on_the_held_out_rows(tmp_path, capsys):
    from fairlearn.metrics import demographic_parity_difference
    from fairlearn.postprocessing import ThresholdOptimizer

    frame = _log()
    spec = _spec(tmp_path, frame, "{constraint: demographic_parity, attribute: sex}")
    assert (
        main(
            ["mitigate", str(spec), "--method", "threshold", "--out", str(tmp_path / "out"), "--no-progress"]
        )
        == 0
    )
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    section = results["sections"]["mitigation"]
    split = pd.read_csv(out / "mitigation_split.csv")
    cal = split.loc[split["part"] == "calibration", "row"].to_numpy()
    held = split.loc[split["part"] == "held_out", "row"].to_numpy()
    assert len(cal) + len(held) == len(frame)
    rule = DecisionRule.from_dict(json.loads((out / "decision_rule.json").read_text()))
    # fairlearn run directly on the same calibration rows, at the chosen tolerance and random state
    direct = ThresholdOptimizer(
        estimator=_Identity().fit(None, None),
        constraints="demographic_parity",
        prefit=True,
        predict_method="predict_proba",
        tol=rule.tol,
    ).fit(
        frame["y_score"].to_numpy()[cal].reshape(-1, 1),
        frame["outcome"].to_numpy()[cal],
        sensitive_features=frame["sex"].to_numpy()[cal],
    )
    after = direct.predict(
        frame["y_score"].to_numpy()[held].reshape(-1, 1),
        sensitive_features=frame["sex"].to_numpy()[held],
        random_state=rule.random_state,
    )
    y = frame["outcome"].to_numpy()[held]
    metrics = results["metrics"]
    assert metrics["mitigation.threshold.performance.accuracy"] == pytest.approx(
        (after == y).mean(), abs=1e-9
    )
    expected = demographic_parity_difference(y, after, sensitive_features=frame["sex"].to_numpy()[held])
    assert metrics["mitigation.threshold.fairness.sex.demographic_parity_difference"] == pytest.approx(
        expected, abs=1e-9
    )
    before = demographic_parity_difference(
        y, frame["y_pred"].to_numpy()[held], sensitive_features=frame["sex"].to_numpy()[held]
    )
    assert metrics["mitigation.threshold.before.fairness.sex.demographic_parity_difference"] == pytest.approx(
        before, abs=1e-9
    )
    assert metrics["mitigation.threshold.uses_sensitive_attribute"] == 1.0
    assert len(section["tables"]["frontier"]) >= 9
    assert any(row["targeted"] for row in section["tables"]["changes"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert "decision_rule" in manifest["outputs"] and "split" in manifest["outputs"]
    assert "the most accurate setting" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mitigation", "drop_scores", "argv_method", "expect"),
    [
        ("{constraint: parity, attribute: sex}", False, "threshold", "mitigation.constraint"),
        ("{constraint: demographic_parity, attribute: race}", False, "threshold", "mitigation.attribute"),
        ("{constraint: demographic_parity, attribute: sex}", True, "threshold", "y_score"),
        ("{constraint: demographic_parity, attribute: sex}", False, "reweigh", "model.predictions"),
        ("{constraint: demographic_parity, attribute: sex}", False, "resample", "--method"),
        ("{constraint: equalized_odds, attribute: sex, tol: 0.1}", False, "threshold", "tol"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, mitigation, drop_scores, argv_method, expect):
    frame = _log(400)
    if drop_scores:
        frame = frame.drop(columns=["y_score"])
    spec = _spec(tmp_path, frame, mitigation)
    try:
        code = main(
            ["mitigate", str(spec), "--method", argv_method, "--out", str(tmp_path / "out"), "--no-progress"]
        )
    except SystemExit as exc:  # argparse's usage errors exit 2 themselves
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and expect in err[0], err
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_group_too_small_for_the_calibration_split_is_bad_input(tmp_path, capsys):
    frame = _log(400)
    frame.loc[0, "sex"] = "X"  # one row: it cannot be on both sides of the split
    spec = _spec(tmp_path, frame, "{constraint: demographic_parity, attribute: sex}")
    code = main(
        ["mitigate", str(spec), "--method", "threshold", "--out", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "group 'X'" in err[0]


def test_employment_pack_fails_threshold_mitigation_as_race_norming(tmp_path, capsys):
    frame = _log(1500)
    spec = _spec(tmp_path, frame, "{constraint: demographic_parity, attribute: sex}")
    assert (
        main(
            ["mitigate", str(spec), "--method", "threshold", "--out", str(tmp_path / "out"), "--no-progress"]
        )
        == 0
    )
    capsys.readouterr()
    code = main(
        [
            "check",
            str(tmp_path / "out" / "results.json"),
            "--policy",
            "employment-four-fifths",
            "--format",
            "json",
        ]
    )
    outcomes = json.loads(capsys.readouterr().out)
    rule = next(o for o in outcomes["outcomes"] if o["rule"] == "eeoc.no_race_norming")
    assert code == 1
    assert rule["status"] == "FAIL" and "42 U.S.C. §2000e-2(l)" in rule["refs"]


@pytest.mark.slow
def test_a_trained_model_is_mitigated_and_its_folder_decides_by_the_rule(tmp_path, capsys):
    """Model mode: the output's model folder carries the rule, and loading it applies the rule."""
    import yaml

    from governance.models.handle import load_handle

    root = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((root / "audits" / "german-credit.yaml").read_text())
    raw["train"]["epochs"] = 2
    raw["audits"] = {}
    raw.pop("deployment", None)
    raw["mitigation"] = {"constraint": "demographic_parity", "attribute": "age_group"}
    for split in ("train", "eval"):
        raw["data"][split] = str(root / "audits" / raw["data"][split])
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    assert main(["train", str(spec), "--out", str(tmp_path / "m"), "--no-progress"]) == 0
    out = tmp_path / "out"
    argv = ["mitigate", str(spec), "--method", "threshold", "--model", str(tmp_path / "m"), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    capsys.readouterr()
    rule = DecisionRule.from_dict(json.loads((out / "model" / "decision_rule.json").read_text()))
    handle = load_handle(out / "model")
    frame = pd.read_csv(raw["data"]["eval"])
    scores = handle.predict_proba(frame)[:, -1]
    expected = rule.predict(scores, frame["age_group"].tolist())
    assert (handle.predict(frame) == expected).all()
    assert not (tmp_path / "m" / "decision_rule.json").exists()  # the audited folder is untouched
    manifest = json.loads((out / "manifest.json").read_text())
    assert "model/decision_rule.json" in manifest["files"]
    # Running again replaces the folder whole (staged and swapped, like an audit folder).
    assert main([*argv, "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "mitigation_split.csv", "model", "report.html", "results.json"]
    )


def test_a_group_with_one_label_in_the_calibration_split_is_bad_input(tmp_path, capsys):
    frame = _log(400)
    frame.loc[:9, "sex"] = "X"
    frame.loc[:9, "outcome"] = 1  # ThresholdOptimizer needs both labels in every group
    spec = _spec(tmp_path, frame, "{constraint: demographic_parity, attribute: sex}")
    code = main(
        ["mitigate", str(spec), "--method", "threshold", "--out", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "group 'X' of 'sex' has only label '1'" in err[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_sensitive_column_missing_from_the_data_is_bad_input(tmp_path, capsys):
    frame = _log(400).drop(columns=["sex"])
    spec = _spec(tmp_path, frame, "{constraint: demographic_parity, attribute: sex}")
    code = main(
        ["mitigate", str(spec), "--method", "threshold", "--out", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "sex" in err[0] and "missing" in err[0]


def test_a_method_nobody_offers_is_one_line_and_exit_2(tmp_path, capsys):
    spec = _spec(tmp_path, _log(200), "{constraint: demographic_parity, attribute: sex}")
    try:
        code = main(
            ["mitigate", str(spec), "--method", "magic", "--out", str(tmp_path / "out"), "--no-progress"]
        )
    except SystemExit as exc:  # argparse's usage errors exit 2 themselves
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--method" in err[0] and "magic" in err[0], err
