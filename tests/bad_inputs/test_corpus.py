"""The bad-input corpus: specs, data, predictions, results, policies, waivers and usage.

Each case writes its files into an empty folder, runs one command in-process
(``governance.cli.main``), and asserts

- the exit code (2 for bad input; 1 where ``check`` fails closed on a results file),
- exactly one line on stderr, naming the file and the field, and saying what was expected
  (a regular expression per case),
- that nothing was written or changed: the whole folder (the current directory too) hashes the
  same before and after.

``OUTPUT_CASES`` at the end are the injection findings of issue 12: hostile strings through
``check --format markdown|junit|text`` and ``report --format markdown``; their output is parsed
with a real parser. Model-folder cases are in ``test_model_folders.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from governance.cli import main
from tests.conftest import BASE_RESULTS
from tests.data.helpers import spec_dict, tabular_frame

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    setup: Setup
    argv: tuple[str, ...]
    file: str  # the file the one stderr line must name
    field: str | None  # the field it must name (None: the file as a whole is wrong)
    message: str  # regular expression for what was expected
    code: int = 2
    tags: tuple[str, ...] = field(default=())


# -- builders ---------------------------------------------------------------------------------------


def frames(n: int = 80) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = tabular_frame(n, seed=1)
    cut = int(0.7 * n)
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        # pandas writes inf as null; JSON readers (pandas included) read the -Infinity token.
        rows = frame.to_dict(orient="records")
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def tabular(
    *,
    train: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    eval_: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    suffix: str = ".csv",
    spec: Callable[[dict[str, Any]], None] | None = None,
) -> Setup:
    """Train/eval files (optionally mutated) and spec.yaml pointing at them."""

    def setup(d: Path) -> None:
        tr, ev = frames()
        write_frame(train(tr.copy()) if train else tr, d / f"train{suffix}")
        write_frame(eval_(ev.copy()) if eval_ else ev, d / f"eval{suffix}")
        doc = spec_dict(f"train{suffix}", f"eval{suffix}")
        if spec is not None:
            spec(doc)
        (d / "spec.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    return setup


def spec_text(text: str, *, data: bool = True) -> Setup:
    def setup(d: Path) -> None:
        if data:
            tabular()(d)
        (d / "spec.yaml").write_text(text, encoding="utf-8")

    return setup


def steps(*actions: Callable[[Path], object]) -> Setup:
    """Run setup actions in order."""

    def setup(d: Path) -> None:
        for action in actions:
            action(d)

    return setup


def raw_file(name: str, content: str | bytes, then: Setup | None = None) -> Setup:
    def setup(d: Path) -> None:
        if then is not None:
            then(d)
        target = d / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    return setup


def cell(column: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        if value is not None and not isinstance(value, float):
            frame[column] = frame[column].astype(object)
        elif isinstance(value, float) and frame[column].dtype.kind in "iub":
            frame[column] = frame[column].astype("float64")
        frame.loc[rows, column] = value
        return frame

    return mutate


def decision_log(
    mutate: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    *,
    suffix: str = ".csv",
    separate_eval: bool = False,
    task: str = "binary_classification",
) -> Setup:
    """A predictions-only spec over a decision log (label, groups, y_pred, y_score)."""

    def setup(d: Path) -> None:
        rng = np.random.default_rng(0)
        n = 60
        y = rng.integers(0, 2, n)
        log = pd.DataFrame(
            {
                "outcome": y,
                "sex": rng.choice(["F", "M"], n),
                "band": rng.choice([1.0, 2.0], n),
                "y_pred": np.where(rng.random(n) < 0.8, y, 1 - y),
                "y_score": rng.random(n),
            }
        )
        if mutate is not None:
            log = mutate(log)
        pred = f"pred{suffix}"
        if separate_eval:
            write_frame(log[["outcome", "sex", "band"]], d / f"eval{suffix}")
            write_frame(log[[c for c in ("y_pred", "y_score") if c in log.columns]], d / pred)
            data = f"eval{suffix}"
        else:
            write_frame(log, d / pred)
            data = pred
        (d / "spec.yaml").write_text(
            f"name: log\ntask: {task}\nseed: 0\n"
            f"data: {{eval: {data}, label: outcome, sensitive: [sex, band]}}\n"
            f"model: {{predictions: {pred}}}\naudits: {{fairness: {{bootstrap: 0}}, performance: {{}}}}\n",
            encoding="utf-8",
        )

    return setup


def results(text: str | None = None, **changes: Any) -> Setup:
    def setup(d: Path) -> None:
        if text is not None:
            body = text
        else:
            doc = json.loads(json.dumps(BASE_RESULTS))
            for key, value in changes.items():
                doc[key] = value
            body = json.dumps(doc)
        (d / "results.json").write_text(body, encoding="utf-8")
        (d / "policy.yaml").write_text(GOOD_POLICY, encoding="utf-8")

    return setup


def results_with(old: str, new: str) -> Setup:
    """BASE_RESULTS as JSON text with one literal replacement (NaN/Infinity are not JSON values)."""
    text = json.dumps(BASE_RESULTS)
    assert old in text
    return results(text.replace(old, new, 1))


GOOD_POLICY = """name: corpus
version: 1.0.0
rules:
  - id: perf.accuracy
    metric: performance.accuracy
    op: "<="
    threshold: 0.99
    severity: blocking
  - id: perf.balanced
    metric: performance.balanced_accuracy
    op: "!="
    threshold: 0.5
    severity: major
"""


def policy(text: str) -> Setup:
    def setup(d: Path) -> None:
        results()(d)
        (d / "policy.yaml").write_text(text, encoding="utf-8")

    return setup


def rule(**fields: Any) -> Setup:
    """A one-rule policy whose rule is a valid one with ``fields`` changed (None deletes)."""
    base: dict[str, Any] = {
        "id": "r1",
        "title": "accuracy",
        "metric": "performance.accuracy",
        "op": ">=",
        "threshold": 0.5,
        "severity": "major",
    }
    for key, value in fields.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return policy(yaml.safe_dump({"name": "p", "version": "1", "rules": [base]}))


def waivers(text: str) -> Setup:
    def setup(d: Path) -> None:
        results()(d)
        (d / "waivers.yaml").write_text(text, encoding="utf-8")

    return setup


WAIVER = {"rule": "perf.accuracy", "reason": "known", "approver": "Jo", "expires": "2030-01-01"}


def waiver(**fields: Any) -> Setup:
    entry = dict(WAIVER)
    for key, value in fields.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return waivers(yaml.safe_dump([entry]))


TRAIN = ("train", "{d}/spec.yaml", "--out", "{d}/model", "--no-progress", "--device", "cpu")
AUDIT = ("audit", "{d}/spec.yaml", "--out", "{d}/out", "--no-progress", "--device", "cpu")
CHECK = ("check", "{d}/results.json", "--policy", "{d}/policy.yaml")
VALIDATE = ("policy", "validate", "{d}/policy.yaml")
WAIVE = (*CHECK, "--waivers", "{d}/waivers.yaml")


def set_(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a dotted spec field (None deletes it)."""

    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value

    return change


# -- the cases --------------------------------------------------------------------------------------

SPEC_CASES = [
    Case("spec-missing", lambda d: None, TRAIN, "spec.yaml", None, "not found"),
    Case("spec-not-yaml", spec_text("name: [unclosed\n"), TRAIN, "spec.yaml", "line", "YAML"),
    Case("spec-a-list", spec_text("- 1\n- 2\n"), TRAIN, "spec.yaml", None, "mapping"),
    Case(
        "spec-unknown-key",
        tabular(spec=set_("colour", "blue")),
        TRAIN,
        "spec.yaml",
        "colour",
        "[Ee]xtra|not permitted|unknown",
    ),
    Case("spec-bad-task", tabular(spec=set_("task", "regression")), TRAIN, "spec.yaml", "task", "binary"),
    Case(
        "spec-no-label",
        tabular(spec=set_("data.label", None)),
        TRAIN,
        "spec.yaml",
        "data.label",
        "required|missing",
    ),
    Case("spec-seed-text", tabular(spec=set_("seed", "abc")), TRAIN, "spec.yaml", "seed", "integer"),
    Case(
        "spec-epochs-zero",
        tabular(spec=set_("train.epochs", 0)),
        TRAIN,
        "spec.yaml",
        "train.epochs",
        "greater|>",
    ),
    Case(
        "spec-batch-negative",
        tabular(spec=set_("train.batch_size", -1)),
        TRAIN,
        "spec.yaml",
        "train.batch_size",
        "greater|>",
    ),
    Case(
        "spec-delta-above-one",
        tabular(spec=set_("train.privacy", {"target_epsilon": 3.0, "delta": 2.0, "max_grad_norm": 1.0})),
        TRAIN,
        "spec.yaml",
        "train.privacy.delta",
        r"in \(0, 1\)",
    ),
    Case(
        "spec-epsilon-negative",
        tabular(spec=set_("train.privacy", {"target_epsilon": -1.0, "delta": 1e-5, "max_grad_norm": 1.0})),
        TRAIN,
        "spec.yaml",
        "train.privacy.target_epsilon",
        r"greater|>|must be in \(0, 100\]",
    ),
    Case(
        "spec-unknown-audit",
        tabular(spec=set_("audits.fairnes", {})),
        AUDIT,
        "spec.yaml",
        "audits.fairnes",
        "unknown audit|expected one of",
    ),
    Case(
        "spec-fairness-unknown-option",
        tabular(spec=set_("audits.fairness", {"bogus": 1})),
        AUDIT,
        "spec.yaml",
        "audits.fairness.bogus",
        "unknown option|expected one of",
    ),
    Case(
        "spec-performance-gap-range",
        tabular(spec=set_("audits.performance", {"max_gap": 2})),
        AUDIT,
        "spec.yaml",
        "audits.performance.max_gap",
        r"\[0, 1\]|less than or equal to 1",
    ),
    Case(
        "spec-quality-threshold-range",
        tabular(spec=set_("audits.data_quality", {"max_missing_rate": 5})),
        TRAIN,
        "spec.yaml",
        "audits.data_quality.max_missing_rate",
        r"\[0, 1\]|less than or equal to 1",
    ),
    Case(
        "spec-proxy-not-sensitive",
        tabular(spec=set_("data.proxies", {"colour": ["x1"]})),
        TRAIN,
        "spec.yaml",
        "data.proxies.colour",
        "not one of data.sensitive",
    ),
    Case(
        "spec-positive-not-a-label",
        tabular(spec=set_("data.positive", "maybe")),
        TRAIN,
        "spec.yaml",
        "data.positive",
        "not a label value",
    ),
    Case(
        "spec-numeric-not-a-feature",
        tabular(spec=set_("data.numeric", ["sex"])),
        TRAIN,
        "spec.yaml",
        "data.numeric",
        "not a feature column",
    ),
    Case(
        "spec-eval-file-missing",
        tabular(spec=set_("data.eval", "nowhere.csv")),
        TRAIN,
        "nowhere.csv",
        None,
        "file not found",
    ),
    Case(
        "spec-feature-not-in-data",
        tabular(spec=set_("data.features", ["x1", "x9"])),
        TRAIN,
        "train.csv",
        "x9",
        "not found",
    ),
]

DATA_CASES = [
    Case(
        "data-ragged-csv",
        tabular(),
        TRAIN,
        "eval.csv",
        "line 3",
        "fields",
        tags=("ragged",),
    ),
    Case("data-empty-file", raw_file("eval.csv", "", tabular()), TRAIN, "eval.csv", None, "no data rows"),
    Case(
        "data-header-only",
        raw_file("eval.csv", "x1,x2,colour,sex,age_group,target\n", tabular()),
        TRAIN,
        "eval.csv",
        None,
        "no data rows",
    ),
    Case(
        "data-unsupported-suffix",
        tabular(spec=set_("data.eval", "eval.txt")),
        TRAIN,
        "eval.txt",
        None,
        "unsupported file type",
    ),
    Case(
        "data-label-column-missing",
        tabular(eval_=lambda f: f.drop(columns=["target"])),
        TRAIN,
        "eval.csv",
        "target",
        "not found",
    ),
    Case(
        "data-sensitive-column-missing",
        tabular(eval_=lambda f: f.drop(columns=["sex"])),
        TRAIN,
        "eval.csv",
        "sex",
        "not found",
    ),
    Case(
        "data-label-missing-values",
        tabular(train=cell("target", [2, 5], None)),
        TRAIN,
        "train.csv",
        "target",
        "2 missing value",
    ),
    Case(
        "data-one-class",
        tabular(train=lambda f: f.assign(target="yes"), eval_=lambda f: f.assign(target="yes")),
        TRAIN,
        "train.csv",
        "target",
        "single class",
    ),
    Case(
        "data-three-classes-binary-task",
        tabular(train=cell("target", [0], "maybe")),
        TRAIN,
        "train.csv",
        "target",
        "3 classes",
    ),
    # Issue 12: five -inf cells in eval flipped attribution.sensitive_share and nulled the MIA AUC, exit 0.
    Case(
        "data-minus-inf-in-eval-feature",
        tabular(eval_=cell("x1", [1, 3, 5, 7, 9], -np.inf)),
        AUDIT,
        "eval.csv",
        "x1",
        r"5 row\(s\) hold a non-finite number \(-inf\), first at row 1",
    ),
    # Issue 12: inf in train data trained on NaN, then "unexpected ValueError".
    Case(
        "data-inf-in-train-feature",
        tabular(train=cell("x2", [4], np.inf)),
        TRAIN,
        "train.csv",
        "x2",
        r"1 row\(s\) hold a non-finite number \(inf\), first at row 4",
    ),
    Case(
        "data-overflowing-number",
        tabular(train=cell("x1", [0, 1], "1e999")),
        TRAIN,
        "train.csv",
        "x1",
        r"2 row\(s\) hold a non-finite number \(inf\)",
    ),
    Case(
        "data-inf-in-numeric-label",
        tabular(
            train=lambda f: f.assign(target=np.where(f["target"] == "yes", 1.0, 0.0)).pipe(
                cell("target", [3], np.inf)
            ),
            eval_=lambda f: f.assign(target=np.where(f["target"] == "yes", 1.0, 0.0)),
        ),
        TRAIN,
        "train.csv",
        "target",
        "non-finite",
    ),
    Case(
        "data-inf-in-numeric-group",
        tabular(
            eval_=lambda f: f.assign(age_group=np.where(f["age_group"] == "old", 1.0, 2.0)).pipe(
                cell("age_group", [0, 2], -np.inf)
            ),
            train=lambda f: f.assign(age_group=np.where(f["age_group"] == "old", 1.0, 2.0)),
        ),
        TRAIN,
        "eval.csv",
        "age_group",
        r"2 row\(s\) hold a non-finite",
    ),
    Case(
        "data-inf-in-parquet",
        tabular(eval_=cell("x1", [2], np.inf), suffix=".parquet"),
        AUDIT,
        "eval.parquet",
        "x1",
        "non-finite number",
    ),
    Case(
        "data-inf-in-jsonl",
        tabular(train=cell("x1", [0, 1, 2], -np.inf), suffix=".jsonl"),
        TRAIN,
        "train.jsonl",
        "x1",
        "3 row\\(s\\) hold a non-finite",
    ),
    Case(
        "data-declared-numeric-holds-text",
        tabular(train=cell("x1", [3, 8], "twelve"), spec=set_("data.numeric", ["x1", "x2"])),
        TRAIN,
        "train.csv",
        "x1",
        r"declared numeric but 2 value\(s\) are not numbers, first 'twelve' at row 3",
    ),
    # Issue 12: a numeric column holding a few strings became 690 one-hot categories, no finding.
    Case(
        "data-numbers-with-stray-strings",
        tabular(train=cell("x1", [3, 8, 9], "n.a."), eval_=cell("x1", [1], "?")),
        TRAIN,
        "spec.yaml",
        "data",
        r"column 'x1' holds numbers but 4 value\(s\) are not numbers.*data_quality\.non_numeric\.x1",
    ),
    Case(
        "data-inf-in-privacy-nonmembers",
        steps(
            tabular(spec=set_("audits.privacy", {"nonmembers": "holdout.csv"})),
            lambda d: cell("x1", [0, 1], np.inf)(frames(40)[1].assign(x1=lambda f: f["x1"] + 100)).to_csv(
                d / "holdout.csv", index=False
            ),
        ),
        AUDIT,
        "spec.yaml",
        "audits.privacy.nonmembers",
        r"holdout.csv: x1: 2 row\(s\) hold a non-finite number \(inf\)",
    ),
    Case(
        "data-corrupt-parquet",
        raw_file("eval.parquet", b"PAR1 not really", tabular(suffix=".parquet")),
        TRAIN,
        "eval.parquet",
        None,
        "cannot read",
    ),
    Case(
        "data-corrupt-jsonl",
        raw_file("eval.jsonl", '{"x1": 1,\n', tabular(suffix=".jsonl")),
        TRAIN,
        "eval.jsonl",
        None,
        "cannot read",
    ),
    Case(
        "data-not-utf8",
        raw_file("eval.csv", b"x1,target\n\xff\xfe,yes\n", tabular()),
        TRAIN,
        "eval.csv",
        None,
        "cannot read",
    ),
    Case(
        "data-no-features-left",
        tabular(
            train=lambda f: f[["sex", "age_group", "target"]],
            eval_=lambda f: f[["sex", "age_group", "target"]],
        ),
        TRAIN,
        "spec.yaml",
        "data.features",
        "no feature columns",
    ),
]

PREDICTION_CASES = [
    Case(
        "pred-no-y_pred",
        decision_log(lambda f: f.drop(columns=["y_pred"])),
        AUDIT,
        "pred.csv",
        "y_pred",
        "missing",
    ),
    Case(
        "pred-score-nan",
        decision_log(cell("y_score", [4], np.nan), suffix=".parquet"),
        AUDIT,
        "pred.parquet",
        "y_score",
        "missing value|NaN",
    ),
    Case(
        "pred-score-inf",
        decision_log(cell("y_score", [6], np.inf)),
        AUDIT,
        "pred.csv",
        "y_score",
        r"value inf \(row 6\) is outside \[0, 1\]",
    ),
    Case(
        "pred-score-above-one",
        decision_log(cell("y_score", [2], 1.5)),
        AUDIT,
        "pred.csv",
        "y_score",
        r"outside \[0, 1\]",
    ),
    Case(
        "pred-outside-label-set",
        decision_log(cell("y_pred", [9], 7)),
        AUDIT,
        "pred.csv",
        "y_pred",
        "not in the label set",
    ),
    Case(
        "pred-decision-inf",
        decision_log(cell("y_pred", [9], np.inf)),
        AUDIT,
        "pred.csv",
        "y_pred",
        r"1 row\(s\) hold a non-finite number \(inf\)",
    ),
    Case(
        "pred-group-inf",
        decision_log(cell("band", [1, 2], -np.inf), suffix=".parquet"),
        AUDIT,
        "pred.parquet",
        "band",
        r"2 row\(s\) hold a non-finite number \(-inf\)",
    ),
    Case(
        "pred-length-mismatch",
        steps(
            decision_log(separate_eval=True),
            lambda d: pd.read_csv(d / "pred.csv").iloc[:50].to_csv(d / "pred.csv", index=False),
        ),
        AUDIT,
        "pred.csv",
        None,
        "has 50 rows but the eval data",
    ),
    Case(
        "pred-score-multiclass",
        decision_log(
            lambda f: f.assign(outcome=np.arange(len(f)) % 3, y_pred=np.arange(len(f)) % 3),
            task="multiclass_classification",
        ),
        AUDIT,
        "pred.csv",
        "y_score",
        "binary-task column",
    ),
    Case(
        "pred-file-missing",
        steps(decision_log(), lambda d: (d / "pred.csv").unlink()),
        AUDIT,
        "pred.csv",
        None,
        "not found",
    ),
]

RESULTS_CASES = [
    Case(
        "results-missing",
        steps(results(), lambda d: (d / "results.json").unlink()),
        CHECK,
        "results.json",
        None,
        "not found",
    ),
    Case(
        "results-not-json", results("{not json"), CHECK, "results.json", "line 1 column 2", "not valid JSON"
    ),
    Case("results-a-list", results("[1, 2]"), CHECK, "results.json", None, "expected a JSON object"),
    Case(
        "results-no-schema-version",
        results(schema_version=None),
        CHECK,
        "results.json",
        "schema_version",
        "missing",
    ),
    Case(
        "results-schema-version-2",
        results(schema_version=2),
        CHECK,
        "results.json",
        "schema_version",
        "not supported",
    ),
    Case(
        "results-metrics-a-list", results(metrics=[1]), CHECK, "results.json", "metrics", "expected an object"
    ),
    Case(
        "results-metric-a-string",
        results(metrics={"performance.accuracy": "0.7"}),
        CHECK,
        "results.json",
        "metrics.performance.accuracy",
        "expected a number or null, got str",
    ),
    Case(
        "results-metric-id-invalid",
        results(metrics={"Performance Accuracy": 0.7}),
        CHECK,
        "results.json",
        "metrics.Performance Accuracy",
        "not a metric ID",
    ),
    Case(
        "results-finding-severity",
        results(findings=[{"id": "x", "severity": "urgent", "message": "m"}]),
        CHECK,
        "results.json",
        "findings[0].severity",
        "expected one of",
    ),
    Case(
        "results-section-status",
        results(sections={"fairness": {"status": "fine"}}),
        CHECK,
        "results.json",
        "sections.fairness.status",
        "expected one of",
    ),
    Case(
        "results-a-folder",
        steps(results(), lambda d: (d / "r").mkdir()),
        ("check", "{d}/r", "--policy", "{d}/policy.yaml"),
        "r",
        None,
        "cannot read file",
    ),
    # Issue 12: -Infinity passed a `<=` rule, NaN passed `!=`; now check fails closed (exit 1).
    Case(
        "results-minus-infinity-le",
        results_with('"performance.accuracy": 0.74', '"performance.accuracy": -Infinity'),
        CHECK,
        "results.json",
        "performance.accuracy",
        r"FAILED .*not a finite|non-finite",
        code=1,
    ),
    Case(
        "results-nan-ne",
        results_with('"performance.balanced_accuracy": 0.66', '"performance.balanced_accuracy": NaN'),
        CHECK,
        "results.json",
        "performance.balanced_accuracy",
        "FAILED .*non-finite",
        code=1,
    ),
    Case(
        "results-overflow-number",
        results_with('"performance.accuracy": 0.74', '"performance.accuracy": 1e999'),
        CHECK,
        "results.json",
        "performance.accuracy",
        "FAILED .*non-finite",
        code=1,
    ),
    Case(
        "results-nan-in-a-table",
        results_with(
            '"sections": {}',
            '"sections": {"fairness": {"status": "ok", "tables": {"groups": [{"rate": NaN}]}}}',
        ),
        CHECK,
        "results.json",
        "sections.fairness.tables.groups[0].rate",
        "FAILED .*non-finite",
        code=1,
    ),
    Case(
        "results-infinity-unrelated-metric",
        results_with('"data_quality.duplicate_rate": 0.0', '"data_quality.duplicate_rate": Infinity'),
        CHECK,
        "results.json",
        "data_quality.duplicate_rate",
        "FAILED .*non-finite",
        code=1,
    ),
]

POLICY_CASES = [
    Case(
        "policy-missing",
        steps(results(), lambda d: (d / "policy.yaml").unlink()),
        VALIDATE,
        "policy.yaml",
        None,
        "not found",
    ),
    Case("policy-not-yaml", policy("rules: [\n"), VALIDATE, "policy.yaml", "line", "not valid YAML"),
    Case("policy-a-list", policy("- 1\n"), VALIDATE, "policy.yaml", None, "expected a mapping"),
    Case("policy-no-name", policy("version: 1\nrules: []\n"), VALIDATE, "policy.yaml", "name", "required"),
    Case(
        "policy-unknown-field",
        policy("name: p\nrule: []\n"),
        VALIDATE,
        "policy.yaml",
        "rule",
        "unknown field",
    ),
    Case(
        "policy-rules-not-list",
        policy("name: p\nrules: {a: 1}\n"),
        VALIDATE,
        "policy.yaml",
        "rules",
        "expected a list",
    ),
    Case(
        "policy-rule-unknown-field",
        rule(limit=3),
        VALIDATE,
        "policy.yaml",
        "rules[r1].limit",
        "unknown field",
    ),
    Case("policy-rule-bad-op", rule(op="=>"), VALIDATE, "policy.yaml", "rules[r1].op", "expected one of"),
    Case("policy-rule-no-op", rule(op=None), VALIDATE, "policy.yaml", "rules[r1].op", "required"),
    Case(
        "policy-rule-threshold-text",
        rule(threshold="high"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].threshold",
        "expected a number",
    ),
    Case(
        "policy-rule-threshold-nan",
        policy("name: p\nrules:\n  - {id: r1, metric: performance.accuracy, op: '>=', threshold: .nan}\n"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].threshold",
        "expected a number",
    ),
    Case(
        "policy-rule-threshold-inf",
        policy("name: p\nrules:\n  - {id: r1, metric: performance.accuracy, op: '<=', threshold: .inf}\n"),
        CHECK,
        "policy.yaml",
        "rules[r1].threshold",
        "expected a number",
    ),
    # Issue 12: a misspelled metric with on_missing: skip passed, and validate said OK.
    Case(
        "policy-misspelled-metric-skip-validate",
        rule(metric="performance.acuracy", on_missing="skip"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].metric",
        r"no audit emits 'performance.acuracy' \(did you mean 'performance.accuracy'\?\).*whatever its on_missing",
    ),
    Case(
        "policy-misspelled-metric-skip-check",
        rule(metric="fairness.sex.demographic_parity_ration", on_missing="skip"),
        CHECK,
        "policy.yaml",
        "rules[r1].metric",
        "no audit emits",
    ),
    Case(
        "policy-misspelled-glob",
        rule(metric="fairness.*.demographic_parity_ration", on_missing="warn"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].metric",
        "no audit emits",
    ),
    Case(
        "policy-misspelled-attack",
        rule(metric="robustness.fsgm.eps_0.1.accuracy_drop"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].metric",
        "did you mean 'robustness.fgsm",
    ),
    Case(
        "policy-unknown-audit",
        rule(metric="perf.accuracy"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].metric",
        "whose audit is one of",
    ),
    Case(
        "policy-rule-bad-severity",
        rule(severity="critical"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].severity",
        "blocking",
    ),
    Case(
        "policy-rule-bad-on-missing",
        rule(on_missing="ignore"),
        VALIDATE,
        "policy.yaml",
        "rules[r1].on_missing",
        "fail",
    ),
    Case(
        "policy-rule-bad-id", rule(id="has space"), VALIDATE, "policy.yaml", "rules[0].id", "letters, digits"
    ),
    Case(
        "policy-rule-refs",
        rule(refs=[1, 2]),
        VALIDATE,
        "policy.yaml",
        "rules[r1].refs",
        "list of citation strings",
    ),
    Case(
        "policy-rule-title-list",
        rule(title=["a"]),
        VALIDATE,
        "policy.yaml",
        "rules[r1].title",
        "expected a string",
    ),
    Case(
        "policy-duplicate-rule",
        policy(
            "name: p\nrules:\n  - {id: r1, metric: performance.accuracy, op: '>=', threshold: 0.5}\n"
            "  - {id: r1, metric: performance.f1, op: '>=', threshold: 0.5}\n"
        ),
        VALIDATE,
        "policy.yaml",
        "rules[1].id",
        "duplicate rule id",
    ),
    Case(
        "policy-extends-unknown",
        policy("name: p\nextends: nope\n"),
        VALIDATE,
        "policy.yaml",
        "extends",
        "unknown policy pack",
    ),
    Case(
        "policy-extends-cycle",
        steps(
            policy("name: p\nextends: other.yaml\n"),
            lambda d: (d / "other.yaml").write_text("name: o\nextends: policy.yaml\n"),
        ),
        VALIDATE,
        "policy.yaml",
        "extends",
        "extends cycle",
    ),
    Case(
        "policy-not-utf8",
        raw_file("policy.yaml", b"name: \xff\n", results()),
        VALIDATE,
        "policy.yaml",
        None,
        "cannot read",
    ),
]

WAIVER_CASES = [
    Case("waivers-missing", lambda d: results()(d), WAIVE, "waivers.yaml", None, "not found"),
    Case("waivers-not-yaml", waivers("- {rule: [\n"), WAIVE, "waivers.yaml", "line", "not valid YAML"),
    Case("waivers-not-a-list", waivers("rule: x\n"), WAIVE, "waivers.yaml", "waivers", "expected a list"),
    Case(
        "waivers-entry-not-mapping",
        waivers("- just text\n"),
        WAIVE,
        "waivers.yaml",
        "waivers[0]",
        "expected a mapping",
    ),
    Case(
        "waivers-no-approver", waiver(approver=None), WAIVE, "waivers.yaml", "waivers[0].approver", "required"
    ),
    Case(
        "waivers-empty-reason", waiver(reason="  "), WAIVE, "waivers.yaml", "waivers[0].reason", "non-empty"
    ),
    Case(
        "waivers-bad-date",
        waiver(expires="31/12/2030"),
        WAIVE,
        "waivers.yaml",
        "waivers[0].expires",
        "YYYY-MM-DD",
    ),
    Case(
        "waivers-impossible-date",
        waiver(expires="2030-02-30"),
        WAIVE,
        "waivers.yaml",
        "waivers[0].expires",
        "YYYY-MM-DD",
    ),
    Case("waivers-no-expiry", waiver(expires=None), WAIVE, "waivers.yaml", "waivers[0].expires", "required"),
    Case(
        "waivers-unknown-field",
        waiver(until="2030-01-01"),
        WAIVE,
        "waivers.yaml",
        "waivers[0].until",
        "unknown field",
    ),
    Case(
        "waivers-metric-not-text",
        waiver(metric=3),
        WAIVE,
        "waivers.yaml",
        "waivers[0].metric",
        "expected a metric ID",
    ),
]

USAGE_CASES = [
    Case("usage-bad-format", results(), (*CHECK, "--format", "yaml"), "--format", None, "invalid choice"),
    Case("usage-bad-fail-on", results(), (*CHECK, "--fail-on", "never"), "--fail-on", None, "invalid choice"),
    Case("usage-no-policy", results(), ("check", "{d}/results.json"), "--policy", None, "required"),
]

CASES = SPEC_CASES + DATA_CASES + PREDICTION_CASES + RESULTS_CASES + POLICY_CASES + WAIVER_CASES + USAGE_CASES


def _ragged(d: Path) -> None:
    tabular()(d)
    lines = (d / "eval.csv").read_text().splitlines()
    lines[2] += ",extra"
    (d / "eval.csv").write_text("\n".join(lines) + "\n")


CASES = [
    c if "ragged" not in c.tags else Case(c.id, _ragged, c.argv, c.file, c.field, c.message, c.code)
    for c in CASES
]


# -- the runner -------------------------------------------------------------------------------------


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the SHA-256 of its content (folders and links too)."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + str(path.readlink())
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def run_case(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    work = tmp_path / "w"
    work.mkdir()
    case.setup(work)
    monkeypatch.chdir(work)  # anything a command writes by default (a history store) is hashed too
    before = tree_digest(work)
    capsys.readouterr()
    argv = [a.format(d=work) for a in case.argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert tree_digest(work) == before, "the command wrote or changed a file"
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_case(case, tmp_path, monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert code == case.code, line
    assert "Traceback" not in err and "unexpected" not in line, line
    assert case.file in line, f"the line does not name {case.file}: {line}"
    if case.field is not None:
        assert case.field in line, f"the line does not name the field {case.field}: {line}"
    assert re.search(case.message, line), line


def test_corpus_size() -> None:
    assert len(CASES) >= 65
    assert len({c.id for c in CASES}) == len(CASES)


# -- injection (issue 12): hostile strings through every check and report format --------------------

HOSTILE_TITLE = (
    "x\r# Fake heading\r<script>alert(1)</script> \x01\x1b[31m [link](http://evil.example) @octocat"
)


def _hostile_policy(d: Path, title: str) -> None:
    results_with('"performance.accuracy": 0.74', '"performance.accuracy": 0.74')(d)
    doc = {
        "name": "p",
        "version": "1",
        "rules": [
            {"id": "r1", "title": title, "metric": "performance.accuracy", "op": ">=", "threshold": 0.9},
            {
                "id": "r2",
                "title": title,
                "metric": "performance.balanced_accuracy",
                "op": ">=",
                "threshold": 0.1,
            },
        ],
    }
    (d / "policy.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    entry = dict(WAIVER, rule="r1", reason=title, approver=title)
    (d / "waivers.yaml").write_text(yaml.safe_dump([entry]), encoding="utf-8")


def _check_output(
    fmt: str, title: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    case = Case(f"out-{fmt}", lambda d: _hostile_policy(d, title), (*WAIVE, "--format", fmt), "", None, "")
    folder = tmp_path / ("hostile" if title == HOSTILE_TITLE else "benign")
    folder.mkdir()
    return run_case(case, folder, monkeypatch, capsys)


def test_check_markdown_keeps_hostile_titles_inert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.report.test_escape import MD, structure

    code, hostile, err = _check_output("markdown", HOSTILE_TITLE, tmp_path, monkeypatch, capsys)
    _, benign, _ = _check_output("markdown", "plain title", tmp_path, monkeypatch, capsys)
    assert code == 0 and len(err.strip().splitlines()) == 1
    assert structure(hostile) == structure(benign)
    assert "<script>" not in MD.render(hostile)


def test_check_junit_with_control_characters_is_well_formed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import xml.etree.ElementTree as ET

    code, out, err = _check_output("junit", HOSTILE_TITLE, tmp_path, monkeypatch, capsys)
    assert code == 0 and len(err.strip().splitlines()) == 1
    root = ET.fromstring(out.encode("utf-8"))
    assert len(root.findall("testcase")) == 2
    assert "\\x01\\x1b[31m" in out


def test_check_text_shows_control_characters_instead_of_obeying_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _check_output("text", HOSTILE_TITLE, tmp_path, monkeypatch, capsys)
    assert code == 0
    assert "\x1b" not in out and "\r" not in out and "\\x1b[31m" in out


def test_report_markdown_keeps_a_cr_in_a_group_value_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: a CR in a group value broke out of a code span: live <script>, fake heading."""
    from tests.report.test_escape import MD, RESULTS_FILE, structure

    raw = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    outputs = {}
    for name, value in (("benign", "female"), ("hostile", "female\r<script>alert(1)</script>\r# Fake")):
        doc = json.loads(json.dumps(raw))
        doc["sections"]["fairness"]["tables"]["groups"][0]["group"] = value
        finding = {"id": f"data_quality.group_share.sex.{value}", "severity": "major", "message": value}
        doc["findings"].append(finding)
        (tmp_path / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
        out = tmp_path / f"{name}.md"
        assert (
            main(["report", str(tmp_path / f"{name}.json"), "--format", "markdown", "--output", str(out)])
            == 0
        )
        outputs[name] = out.read_text(encoding="utf-8")
    assert structure(outputs["hostile"]) == structure(outputs["benign"])
    html = MD.render(outputs["hostile"])
    assert "<script>" not in html and "<h1>Fake" not in html
