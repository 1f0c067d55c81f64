"""The audit run: data → (training) → predictions once → every audit → results, report, manifest.

:func:`run_audit` is what ``governance audit`` and ``governance demo`` call. It computes the model's
predictions on eval and train once, hands each audit an :class:`AuditContext` with its options from
the spec, and turns an exception inside one audit into an ERROR section while the others still run
(a bad option, :class:`InputError`, stops the run instead: it is the user's to fix, exit 2).
Every output is written atomically; ``manifest.json``, written last, holds the SHA-256 of every
input and output.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from governance import __version__
from governance._io import atomic_write_json, check_output_dir, sha256_file
from governance.audit.base import AuditContext, ModelHandle, Predictions
from governance.audit.registry import audit_names, create_audit
from governance.errors import InputError
from governance.results import AuditSection, Results, RunInfo, SectionStatus, save_results

if TYPE_CHECKING:
    from governance.data.bundle import DataBundle
    from governance.policy.outcome import CheckReport
    from governance.report.render import ReportWorker
    from governance.spec import Spec

__all__ = ["LIBRARIES", "RunOutcome", "predict", "run_audit"]

#: Distributions whose versions go into results.run.libraries (read from metadata, never imported).
LIBRARIES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "fairlearn",
    "torch",
    "opacus",
    "captum",
    "adversarial-robustness-toolbox",
    "transformers",
)

ERR_NO_MODEL = (
    "the spec neither trains (no train section) nor gives predictions; pass --model DIR with a model "
    "written by `governance train`"
)
#: A folder holding one of these was written by ``governance audit`` (and may be replaced).
AUDIT_MARKS = ("results.json", "manifest.json")
ERR_OUTPUT_SIZE = "model outputs {got} classes {model_classes} but the eval labels include {missing}"


@dataclass(frozen=True)
class RunOutcome:
    """What one audit run produced.

    Attributes
    ----------
    results
        The results written to ``results.json``.
    check_report
        The policy verdict when a policy was given, else None.
    paths
        Output name → file: ``results``, ``manifest``, report formats (``html``…), ``model`` (the
        model folder audited, when there was a model).
    """

    results: Results
    check_report: CheckReport | None
    paths: Mapping[str, Path] = field(default_factory=dict)

    @property
    def errored(self) -> tuple[str, ...]:
        """Names of the audits whose section is ERROR."""
        return tuple(n for n, s in self.results.sections.items() if s.status is SectionStatus.ERROR)

    @property
    def exit_code(self) -> int:
        """0 all audits ran (and the policy passed), 1 an audit errored or the policy failed."""
        if self.errored or (self.check_report is not None and not self.check_report.passed):
            return 1
        return 0


@dataclass(frozen=True)
class _Subject:
    bundle: DataBundle
    eval_predictions: Predictions
    train_predictions: Predictions | None
    handle: ModelHandle | None
    model_dir: Path | None
    ledger: Mapping[str, Any] | None


def run_audit(
    spec: Spec,
    out_dir: str | PathLike[str],
    *,
    model_dir: str | PathLike[str] | None = None,
    policy: Any = None,
    waivers: Any = None,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    report_formats: Sequence[str] = ("html",),
    report_worker: ReportWorker | None = None,
    trust_code: bool = False,
    extra_outputs: Callable[[CheckReport | None], Mapping[str, str]] | None = None,
) -> RunOutcome:
    """Run the audits a spec lists and write ``results.json``, reports and ``manifest.json``.

    Parameters
    ----------
    spec
        A loaded spec (:func:`governance.spec.load_spec`).
    out_dir
        Output folder; created if missing.
    model_dir
        A model folder written by ``governance train``; when None the spec's model is trained into
        ``out_dir/model`` (or, in predictions-only mode, no model is used).
    policy, waivers
        Passed to :func:`governance.policy.engine.check` when ``policy`` is given.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``… for training and inference.
    force
        Train despite blocking data-quality findings (passed to the trainer; recorded in its ledger).
    progress
        Show progress bars (only when stderr is a terminal).
    report_formats
        Report formats written next to results.json (``html``, ``markdown``, ``pdf``…).
    report_worker
        A :class:`~governance.report.render.ReportWorker` for ``report_formats`` started by the
        caller (the earlier it starts, the more of the report stage's fixed cost it hides); by
        default one is started here. The run closes it.
    trust_code
        Allow the spec's user factory (``model.factory``) to run (``--trust-code``); recorded in
        results.run and the manifest.
    extra_outputs
        Called with the policy verdict; returns more files (name → text) to write into the
        folder before the manifest (the demo's junit.xml).

    The folder appears whole: everything is written into a staging folder beside ``out_dir``
    that replaces it in one rename, under an exclusive lock on ``out_dir``.

    Raises
    ------
    InputError
        Bad input anywhere (spec, data, predictions, model, audit options): nothing is written.
    """
    from governance._output_folder import check_target, output_folder

    worker = report_worker
    try:
        out = check_output_dir(out_dir)
        check_target(out, marks=AUDIT_MARKS)
        factory = None
        if spec.model.factory is not None:
            from governance.train.api import require_trust

            factory = require_trust(spec, trust_code)
        started = _now()
        hashes = _HashCache()
        # A bad policy or waivers file is bad input: find out before any work, so nothing is written.
        policy_obj, waiver_objs = _load_policy(policy, waivers)
        # The report stage's fixed cost (Jinja, templates) is paid by a worker while
        # the audits run; it renders once the results exist (see ReportWorker). Forked before the
        # hashing thread starts, so the child never inherits a thread mid-work.
        if worker is None:
            worker = _start_report_worker(tuple(report_formats))
        # The input files' SHA-256 go into results.subject; read them while the data loads.
        hashes.prefetch(_input_files(spec, policy, waivers))
        trains_here = model_dir is None and spec.trains
        ours = ("results.json", "manifest.json", "report.", "junit.xml") + (("model",) if trains_here else ())
        with output_folder(out, marks=AUDIT_MARKS, ours=ours) as staging:

            def shown(path: Path) -> str:
                """Where a file written into the staging folder will be once it is swapped in."""
                try:
                    return str(out / Path(path).relative_to(staging))
                except ValueError:
                    return str(path)

            outcome = _run(
                spec,
                staging,
                started,
                hashes,
                worker,
                policy=policy,
                waivers=waivers,
                policy_obj=policy_obj,
                waiver_objs=waiver_objs,
                model_dir=model_dir,
                device=device,
                force=force,
                progress=progress,
                report_formats=tuple(report_formats),
                factory=factory,
                shown=shown,
                extra_outputs=extra_outputs,
            )
        return replace(outcome, paths={k: Path(shown(p)) for k, p in outcome.paths.items()})
    finally:
        if worker is not None:
            worker.close()


def _run(
    spec: Spec,
    out: Path,
    started: str,
    hashes: _HashCache,
    worker: Any,
    *,
    policy: Any,
    waivers: Any,
    policy_obj: Any,
    waiver_objs: Any,
    model_dir: str | PathLike[str] | None,
    device: str,
    force: bool,
    progress: bool,
    report_formats: tuple[str, ...],
    factory: str | None = None,
    shown: Callable[[Path], str] = str,
    extra_outputs: Callable[[CheckReport | None], Mapping[str, str]] | None = None,
) -> RunOutcome:
    with _progress(progress) as bar:
        with bar.step("loading data"):
            subject = _prepare(
                spec, out, model_dir=model_dir, device=device, force=force, progress=progress, factory=factory
            )
        sections = []
        for name in audit_names():
            if name not in spec.audits:
                continue
            with bar.step(f"audit {name}"):
                sections.append(_run_one(name, spec, subject, device=device))
    run = RunInfo(
        tool_version=__version__,
        spec_name=spec.name,
        seed=spec.seed,
        started_at=started,
        finished_at=_now(),
        device=subject.handle.device if subject.handle is not None else "cpu",
        task=spec.task.value,
        libraries=library_versions(),
        # The report's Annex IV documentation reads purpose and ledger from here, so that a
        # results.json stands on its own, years after the spec and model folder are gone.
        extra={
            "spec": None if spec.source is None else str(spec.source),
            "mode": _mode(subject),
            "intended_purpose": spec.intended_purpose,
            "training": None if subject.ledger is None else dict(subject.ledger),
            "trusted_code": factory,
        },
    )
    results = Results.from_sections(run, sections, subject=_subject_info(spec, subject, hashes, shown=shown))
    paths: dict[str, Path] = {}
    out.mkdir(parents=True, exist_ok=True)
    check_report = None
    if policy_obj is not None:
        from governance.policy.engine import check

        check_report = check(results, policy_obj, waiver_objs)
    if worker is not None:
        # The worker draws and writes the reports while this process writes results.json.
        worker.submit(results, out, check_report=check_report)
    paths["results"] = out / "results.json"
    save_results(results, paths["results"])
    paths.update(_write_reports(results, out, check_report, report_formats, worker))
    if extra_outputs is not None:
        from governance._io import atomic_write_text

        for name, text in extra_outputs(check_report).items():
            paths[Path(name).stem] = out / name
            atomic_write_text(out / name, text)
    if subject.model_dir is not None:
        paths["model"] = subject.model_dir
    paths["manifest"] = out / "manifest.json"
    _write_manifest(
        paths["manifest"],
        spec,
        subject,
        paths,
        hashes,
        policy=policy,
        waivers=waivers,
        shown=shown,
        trusted_code=factory,
    )
    return RunOutcome(results=results, check_report=check_report, paths=paths)


# -- inputs ---------------------------------------------------------------------------------------


def _load_policy(policy: Any, waivers: Any) -> tuple[Any, Any]:
    """Load the policy (path, built-in pack name, or Policy) and the waivers (path or list)."""
    if policy is None:
        return None, None
    from governance.policy.loader import load_policy

    policy_obj = load_policy(policy)
    if isinstance(waivers, str | PathLike):
        from governance.policy.waivers import load_waivers

        return policy_obj, load_waivers(waivers)
    return policy_obj, waivers


def _prepare(
    spec: Spec,
    out: Path,
    *,
    model_dir: str | PathLike[str] | None,
    device: str,
    force: bool,
    progress: bool,
    factory: str | None = None,
) -> _Subject:
    if spec.model.predictions is not None and model_dir is None:
        from governance.audit.predictions import load_prediction_inputs

        # No training or inference ahead: the audits themselves report bad input right away.
        bundle, eval_pred = load_prediction_inputs(spec)
        return _Subject(bundle, eval_pred, None, None, None, None)

    from governance.data.loading import load_bundle
    from governance.train.trainer import resolve_device

    bundle = load_bundle(spec)
    _preflight_audits(spec, bundle)
    device = resolve_device(device)
    handle: ModelHandle
    ledger: Mapping[str, Any] | None
    mdir: Path | None
    if model_dir is None and spec.model.weights is not None:
        # A user factory with its own weights: nothing to train, no model folder.
        from governance.train.handle import handle_from_spec

        handle, mdir, ledger = handle_from_spec(spec, bundle, device, factory=factory), None, None
    else:
        if model_dir is None:
            if not spec.trains:
                raise InputError(spec.source, "model", ERR_NO_MODEL)
            from governance.train.api import train

            # Inside this run's staging folder, which the run's own lock covers.
            outcome = train(
                spec,
                out / "model",
                bundle=bundle,
                force=force,
                device=device,
                progress=progress,
                trust_code=factory is not None,
                lock=False,
            )
            model_dir = outcome.model_dir
        from governance.train.artifacts import read_ledger
        from governance.train.handle import load_handle

        mdir = Path(model_dir)
        handle = load_handle(mdir, device, factory=factory)
        ledger = read_ledger(mdir)
    where = mdir if mdir is not None else spec.model.weights
    _check_model_inputs(spec, bundle, handle, where)
    eval_pred = predict(handle, bundle.eval, bundle.label, source=where)
    train_pred = None if bundle.train is None else predict(handle, bundle.train, bundle.label, source=where)
    return _Subject(bundle, eval_pred, train_pred, handle, mdir, ledger)


def _check_model_inputs(spec: Spec, bundle: DataBundle, handle: ModelHandle, where: Path | None) -> None:
    """The data must hold the columns (and, for images, the shape) the model was trained on.

    Checked before inference so that ``--model DIR`` with mismatched data exits 2 naming the data
    file and the column or field, rather than failing inside the encoder.
    """
    pre = getattr(handle, "preprocessor", None)
    wanted = tuple(getattr(pre, "features", ()) or ())
    data_file = bundle.paths.get("eval", spec.source)
    missing = [c for c in wanted if c not in bundle.eval.columns]
    if missing:
        raise InputError(
            data_file,
            missing[0],
            f"column missing: the model at {where} takes {len(wanted)} input columns and "
            f"{len(missing)} of them are not in the data",
        )
    trained = getattr(pre, "image_shape", None)
    if trained is not None and bundle.image_shape is not None and tuple(trained) != tuple(bundle.image_shape):
        raise InputError(
            spec.source,
            "model.options.input_shape",
            f"the model at {where} takes images of shape {list(trained)}, the spec gives "
            f"{list(bundle.image_shape)}",
        )


def predict(handle: ModelHandle, frame: Any, label: str, *, source: Path | None = None) -> Predictions:
    """The model's predictions on one split, encoded against the model's classes.

    ``y_score`` is the probability of the last class for binary models.

    Raises
    ------
    InputError
        If the model's output size does not match its classes, or a label is not a model class.
    """
    import pandas as pd

    classes = tuple(str(c) for c in handle.classes)
    proba = np.asarray(handle.predict_proba(frame), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise InputError(
            source,
            "classes",
            f"model outputs {proba.shape[-1]} columns but declares {len(classes)} classes {list(classes)}",
        )
    true_codes = np.asarray(
        pd.Categorical(frame[label].astype(str), categories=list(classes)).codes, dtype=np.int64
    )
    if (true_codes < 0).any():
        missing = sorted(set(frame[label].astype(str)) - set(classes))
        raise InputError(
            source,
            "classes",
            ERR_OUTPUT_SIZE.format(got=len(classes), model_classes=list(classes), missing=missing),
        )
    pred_codes = proba.argmax(axis=1).astype(np.int64)
    names = np.asarray(classes, dtype=object)
    return Predictions(
        y_true=names[true_codes],
        y_pred=names[pred_codes],
        y_score=proba[:, 1] if len(classes) == 2 else None,
        proba=proba,
        classes=classes,
        y_true_codes=true_codes,
        y_pred_codes=pred_codes,
    )


# -- audits ---------------------------------------------------------------------------------------


def _preflight_audits(spec: Spec, bundle: DataBundle) -> None:
    """Let every listed audit reject bad options or data before training and inference.

    Only InputError matters here; an audit whose module fails to import is left for
    :func:`_run_one`, where it becomes that audit's ERROR section.
    """
    for name in audit_names():
        if name not in spec.audits:
            continue
        try:
            audit = create_audit(name)
        except Exception:
            continue
        audit.preflight(spec, bundle, dict(spec.audits.get(name) or {}))


def _run_one(name: str, spec: Spec, subject: _Subject, *, device: str) -> AuditSection:
    """Run one audit; an exception (other than bad input) becomes its ERROR section."""
    start = time.perf_counter()
    try:
        audit = create_audit(name)
        if audit.requires_model and subject.handle is None:
            return AuditSection(
                name=name,
                status=SectionStatus.SKIPPED,
                reason="needs a model; this run audits saved predictions only",
                seconds=0.0,
            )
        context = AuditContext(
            spec=spec,
            data=subject.bundle,
            model=subject.handle,
            eval_predictions=subject.eval_predictions,
            train_predictions=subject.train_predictions,
            ledger=subject.ledger,
            device=subject.handle.device if subject.handle is not None else "cpu",
            seed=spec.seed,
            options=dict(spec.audits.get(name) or {}),
        )
        section = audit.run(context)
    except InputError:
        raise
    except Exception as exc:  # one broken audit must not take the others down
        return AuditSection(
            name=name,
            status=SectionStatus.ERROR,
            error=f"{exc.__class__.__name__}: {exc}",
            seconds=time.perf_counter() - start,
        )
    return _with_seconds(section, time.perf_counter() - start)


def _with_seconds(section: AuditSection, seconds: float) -> AuditSection:
    return replace(section, seconds=round(seconds, 4))


# -- provenance -----------------------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the numbers, read from package metadata."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for dist in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


class _HashCache:
    """SHA-256 of each file once, shared by results.subject and the manifest.

    :meth:`prefetch` hashes files on a background thread: hashlib and file reads release the GIL,
    so a large decision log is hashed while the main thread loads and audits it.
    """

    def __init__(self) -> None:
        self._done: dict[Path, str] = {}
        self._pending: dict[Path, threading.Thread] = {}

    def prefetch(self, paths: Sequence[Path]) -> None:
        keys = [k for k in dict.fromkeys(Path(p).resolve() for p in paths) if k.is_file()]
        keys = [k for k in keys if k not in self._done and k not in self._pending]
        if not keys:
            return

        def work() -> None:
            for key in keys:
                # A file that cannot be read here is hashed (and its error raised) on demand.
                with contextlib.suppress(OSError):
                    self._done[key] = sha256_file(key)

        thread = threading.Thread(target=work, name="governance-sha256", daemon=True)
        for key in keys:
            self._pending[key] = thread
        thread.start()

    def __call__(self, path: Path) -> str:
        key = Path(path).resolve()
        pending = self._pending.pop(key, None)
        if pending is not None:
            pending.join()
        if key not in self._done:
            self._done[key] = sha256_file(key)
        return self._done[key]


def _input_files(spec: Spec, policy: Any, waivers: Any) -> list[Path]:
    """The data, predictions, policy and waiver files a run will hash (those named in the spec)."""
    named = (spec.data.eval, getattr(spec.data, "train", None), spec.model.predictions, policy, waivers)
    return [Path(p) for p in named if isinstance(p, str | PathLike)]


def _audit_input_files(spec: Spec) -> dict[str, tuple[Path, ...]]:
    """Files named by the options of the spec's audits (e.g. the privacy audit's non-members)."""
    out: dict[str, tuple[Path, ...]] = {}
    for name in audit_names():
        if name not in spec.audits:
            continue
        try:
            audit = create_audit(name)
        except Exception:  # its ERROR section says why; it names no file we could hash
            continue
        files = audit.input_files(spec, dict(spec.audits.get(name) or {}))
        if files:
            out[name] = files
    return out


def _model_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def _subject_info(
    spec: Spec, subject: _Subject, hashes: _HashCache, *, shown: Callable[[Path], str] = str
) -> dict[str, Any]:
    data = {
        split: {"path": str(path), "sha256": hashes(Path(path))}
        for split, path in subject.bundle.paths.items()
        if path is not None and Path(path).is_file()
    }
    info: dict[str, Any] = {
        "data": data,
        "data_source": spec.data.source if spec.data.source is not None else subject.bundle.source,
        "data_license": spec.data.license if spec.data.license is not None else subject.bundle.license,
        "label": subject.bundle.label,
        "classes": list(subject.bundle.classes),
        "sensitive": list(subject.bundle.sensitive),
        "rows": {"eval": len(subject.eval_predictions.y_true)}
        | ({} if subject.train_predictions is None else {"train": len(subject.train_predictions.y_true)}),
    }
    if spec.model.predictions is not None and subject.model_dir is None:
        path = Path(spec.model.predictions)
        info["predictions"] = {"path": str(path), "sha256": hashes(path)}
    if subject.model_dir is None and subject.handle is not None and spec.model.weights is not None:
        info["model"] = {
            "path": str(spec.model.weights),
            "files": {Path(spec.model.weights).name: hashes(Path(spec.model.weights))},
        }
    if subject.model_dir is not None:
        info["model"] = {
            "path": shown(subject.model_dir),
            "files": {
                str(p.relative_to(subject.model_dir)): hashes(p) for p in _model_files(subject.model_dir)
            },
        }
    return info


def _mode(subject: _Subject) -> str:
    return "model" if subject.handle is not None else "predictions"


def _start_report_worker(formats: tuple[str, ...]) -> Any:
    """A :class:`~governance.report.render.ReportWorker` for ``formats``, or None (none asked)."""
    if not formats:
        return None
    from governance.report.render import ReportWorker

    return ReportWorker.start(formats)


def _write_reports(
    results: Results,
    out: Path,
    check_report: CheckReport | None,
    formats: tuple[str, ...],
    worker: Any = None,
) -> dict[str, Path]:
    """The reports (report.html by default) through the report stage, policy outcomes included."""
    if not formats:
        return {}
    if worker is not None:
        written = worker.write(results, out, check_report=check_report)
    else:
        from governance.report.render import write_reports

        written = write_reports(results, out, check_report=check_report, formats=formats)
    return {str(fmt): Path(p) for fmt, p in written.items()}


def _write_manifest(
    path: Path,
    spec: Spec,
    subject: _Subject,
    outputs: Mapping[str, Path],
    hashes: _HashCache,
    *,
    policy: Any,
    waivers: Any,
    shown: Callable[[Path], str] = str,
    trusted_code: str | None = None,
) -> None:
    inputs: dict[str, Path] = {}
    if spec.source is not None:
        inputs["spec"] = Path(spec.source).resolve()
    for split, p in subject.bundle.paths.items():
        if p is not None and Path(p).is_file():
            inputs[f"data.{split}"] = Path(p)
    if spec.model.predictions is not None and subject.model_dir is None:
        inputs["predictions"] = Path(spec.model.predictions)
    if subject.model_dir is None and subject.handle is not None and spec.model.weights is not None:
        inputs["model/weights"] = Path(spec.model.weights)
    if subject.model_dir is not None:
        for p in _model_files(subject.model_dir):
            inputs[f"model/{p.relative_to(subject.model_dir)}"] = p
    for key, value in (("policy", policy), ("waivers", waivers)):
        if isinstance(value, str | PathLike) and Path(value).is_file():
            inputs[key] = Path(value)
    for name, files in _audit_input_files(spec).items():
        for i, p in enumerate(files):
            if p.is_file():
                inputs[f"audits.{name}" + (f".{i}" if i else "")] = p
    entries = {
        "inputs": {k: {"path": shown(p), "sha256": hashes(p)} for k, p in inputs.items()},
        "outputs": {
            k: {"path": shown(p), "sha256": sha256_file(p)}
            for k, p in outputs.items()
            if k not in ("manifest", "model") and Path(p).is_file()
        },
        "tool_version": __version__,
        "written_at": _now(),
        "trusted_code": trusted_code,
    }
    atomic_write_json(path, entries)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- progress -------------------------------------------------------------------------------------


class _NoProgress:
    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        yield


class _RichProgress:
    def __init__(self, progress: Any) -> None:
        self._progress = progress

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        task = self._progress.add_task(label, total=None)
        try:
            yield
        finally:
            self._progress.update(task, total=1, completed=1)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[_NoProgress | _RichProgress]:
    """A spinner per stage on a terminal; nothing (and no rich import) otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield _NoProgress()
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        yield _RichProgress(bar)
