"""The one place that runs a spec: options → data → gate + training → predictions → audits → policy →
reports → manifest.

:func:`run_audit` is what ``governance audit`` and ``governance demo`` call; nothing below this module
imports it. It checks the spec's audit names and options before reading any data
(:func:`governance.audit.suite.check_audits`), trains when the spec trains and no model folder is
given (:mod:`governance.train`, whose data-quality gate runs first), computes the model's predictions
on eval and train once (:func:`governance.models.predict.predict`), runs each audit
(:func:`governance.audit.suite.run_one`: an exception inside one audit becomes its ERROR section while
the others still run; bad input, :class:`InputError`, stops the run: it is the user's to fix, exit 2),
then checks the policy, renders the reports and writes the manifest. Every output is written
atomically; ``manifest.json``, written last, holds the SHA-256 of every input and output.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance import __version__
from governance._io import atomic_write_text, check_output_dir, sha256_file
from governance.audit.suite import AuditSubject, check_audits, input_files, listed, preflight, run_one
from governance.errors import InputError
from governance.models.base import ModelHandle, Predictions
from governance.models.predict import predict
from governance.results import Results, RunInfo, SectionStatus, save_results

if TYPE_CHECKING:
    from governance.data.bundle import DataBundle
    from governance.policy.outcome import CheckReport
    from governance.report.render import ReportWorker
    from governance.spec import Spec

__all__ = ["LIBRARIES", "RunOutcome", "run_audit"]

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
    #: Eval predictions of related models (the non-private twin), and their model folders.
    companions: Mapping[str, Predictions] = field(default_factory=dict)
    companion_dirs: Mapping[str, Path] = field(default_factory=dict)
    #: A decision log counted by DuckDB or Spark (governance.audit._engines.CountedLog), or None.
    counted: Any = None


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
    sign_key: str | PathLike[str] | None = None,
    store: str | PathLike[str] | None = None,
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
    sign_key
        A P-256 PEM private key: the finished folder is signed (``evidence.sigstore.json``).
    store
        The history store the run records itself in (default ``$GOVERNANCE_STORE`` or
        ``.governance/history.sqlite``).
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
        # Audit names and options are checked before any data is read or any model trained.
        check_audits(spec)
        check_target(out, marks=AUDIT_MARKS)
        factory = _trusted_factory(spec, trust_code)
        # A glob in the spec that matches nothing is bad input naming its field (issue 17).
        for named in (spec.data.eval, getattr(spec.data, "train", None), spec.model.predictions):
            if named is not None:
                _expanded(named, spec)
        started = _now()
        hashes = _HashCache()
        # A bad policy or waivers file is bad input: find out before any work, so nothing is written.
        policy_obj, waiver_objs = _load_policy(policy, waivers)
        # -- evidence (issue 14): a bad signing key or store is bad input, found before any work.
        from governance.evidence.hooks import planned_signoff

        signoff = planned_signoff(sign_key, store=store)
        # The report stage's fixed cost (Jinja, templates) is paid by a worker while
        # the audits run; it renders once the results exist (see ReportWorker). Forked before the
        # hashing thread starts, so the child never inherits a thread mid-work.
        if worker is None:
            worker = _start_report_worker(tuple(report_formats))
        # The input files' SHA-256 go into results.subject; read them while the data loads.
        hashes.prefetch(_input_files(spec, policy, waivers))
        trains_here = model_dir is None and spec.trains
        ours: tuple[str, ...] = ("results.json", "manifest.json", "report.", "junit.xml")
        ours += ("evidence.sigstore.json", "twin") + (("model",) if trains_here else ())
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
                evidence={"sign_key": sign_key, "store": store, "signoff": signoff},
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
    evidence: Mapping[str, Any] | None = None,
    factory: str | None = None,
    shown: Callable[[Path], str] = str,
    extra_outputs: Callable[[CheckReport | None], Mapping[str, str]] | None = None,
) -> RunOutcome:
    evidence = evidence or {}
    with _progress(progress) as bar:
        with bar.step("loading data"):
            subject = _prepare(
                spec,
                out,
                model_dir=model_dir,
                device=device,
                force=force,
                progress=progress,
                store=evidence.get("store"),
                factory=factory,
            )
        sections = []
        audited = AuditSubject(
            bundle=subject.bundle,
            eval_predictions=subject.eval_predictions,
            train_predictions=subject.train_predictions,
            handle=subject.handle,
            ledger=subject.ledger,
            companions=subject.companions,
            counted=subject.counted,
        )
        for name in listed(spec):
            with bar.step(f"audit {name}"):
                sections.append(run_one(name, spec, audited))
    run = _run_info(spec, subject, started, intended_purpose=spec.intended_purpose, trusted_code=factory)
    results = Results.from_sections(run, sections, subject=_subject_info(spec, subject, hashes, shown=shown))
    # -- evidence (issue 14): sign-off, the last audit of this spec, the data's privacy budget.
    from governance.evidence.hooks import with_evidence

    results = with_evidence(results, policy_obj, store=evidence.get("store"), signoff=evidence.get("signoff"))
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
    for role, folder in subject.companion_dirs.items():
        paths[role] = folder
    paths["manifest"] = out / "manifest.json"
    _write_manifest(
        paths["manifest"],
        spec,
        subject,
        paths,
        hashes,
        policy=policy,
        waivers=waivers,
        trusted_code=factory,
    )
    # -- evidence (issue 14): record the run in the history store, then sign the finished folder
    # (the staging folder: the manifest's paths are relative, so they hold once it is swapped in).
    from governance.evidence.hooks import record_audit_run, sign_audit_folder

    record_audit_run(results, check_report, store=evidence.get("store"))
    sign_audit_folder(out, evidence.get("sign_key"), evidence.get("signoff"))
    return RunOutcome(results=results, check_report=check_report, paths=paths)


def _trusted_factory(spec: Spec, trust_code: bool) -> str | None:
    """The spec's user factory when ``--trust-code`` allows it; None for a built-in model."""
    if spec.model.factory is None:
        return None  # nothing to trust, and no need to import the trainer
    from governance.train.api import require_trust

    return require_trust(spec, trust_code)


def _run_info(spec: Spec, subject: _Subject, started: str, **extra: Any) -> RunInfo:
    """Who ran what, where and when; ``extra`` adds fields to ``run.extra``.

    The report's Annex IV documentation reads purpose and ledger from here, so that a
    results.json stands on its own, years after the spec and model folder are gone.
    """
    return RunInfo(
        tool_version=__version__,
        spec_name=spec.name,
        seed=spec.seed,
        started_at=started,
        finished_at=_now(),
        device=subject.handle.device if subject.handle is not None else "cpu",
        task=spec.task.value,
        libraries=library_versions(),
        extra={
            "spec": None if spec.source is None else str(spec.source),
            "mode": _mode(subject),
            "training": None if subject.ledger is None else dict(subject.ledger),
            **extra,
        },
    )


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
    store: str | PathLike[str] | None = None,
    factory: str | None = None,
) -> _Subject:
    if spec.model.predictions is not None and model_dir is None:
        from governance.audit._engines import choose_engine
        from governance.audit.predictions import load_counted_log, load_prediction_inputs

        # issue 17: beyond memory an engine (DuckDB, Spark) counts the log; the audits read counts.
        engine = choose_engine(getattr(spec, "engine", "auto"), _expanded(spec.model.predictions, spec))
        if engine != "memory":
            bundle, eval_pred, counted = load_counted_log(spec, engine)
            return _Subject(bundle, eval_pred, None, None, None, None, counted=counted)
        # No training or inference ahead: the audits themselves report bad input right away.
        bundle, eval_pred = load_prediction_inputs(spec)
        return _Subject(bundle, eval_pred, None, None, None, None)

    from governance.data.loading import load_bundle
    from governance.models.device import resolve_device

    bundle = load_bundle(spec)
    preflight(spec, bundle)
    device = resolve_device(device)
    handle: ModelHandle
    ledger: Mapping[str, Any] | None
    mdir: Path | None
    if model_dir is None and spec.model.weights is not None:
        # A user factory with its own weights: nothing to train, no model folder.
        from governance.models.handle import handle_from_spec

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
                store=store,
                trust_code=factory is not None,
                lock=False,
            )
            model_dir = outcome.model_dir
        from governance.models.artifacts import read_ledger
        from governance.models.handle import load_handle

        mdir = Path(model_dir)
        handle = load_handle(mdir, device, factory=factory)
        ledger = read_ledger(mdir)
    where = mdir if mdir is not None else spec.model.weights
    _check_model_inputs(spec, bundle, handle, where)
    eval_pred = predict(handle, bundle.eval, bundle.label, source=where)
    train_pred = None if bundle.train is None else predict(handle, bundle.train, bundle.label, source=where)
    companions, companion_dirs = _companions(spec, out, bundle, device=device, force=force, factory=factory)
    return _Subject(bundle, eval_pred, train_pred, handle, mdir, ledger, companions, companion_dirs)


def _companions(
    spec: Spec, out: Path, bundle: DataBundle, *, device: str, force: bool, factory: str | None = None
) -> tuple[dict[str, Predictions], dict[str, Path]]:
    """Train and predict the related models the listed audits compare with (the DP twin)."""
    if "privacy_cost" not in spec.audits:
        return {}, {}
    from governance.audit.privacy_cost import TWIN, parse_options
    from governance.models.handle import load_handle
    from governance.train.twin import train_twin

    options = parse_options(spec.audits.get("privacy_cost") or {}, spec.source)
    outcome = train_twin(
        spec,
        out / "twin",
        bundle=bundle,
        lr=options.lr,
        device=device,
        force=force,
        trust_code=factory is not None,
    )
    handle = load_handle(outcome.model_dir, device, factory=factory)
    return {TWIN: predict(handle, bundle.eval, bundle.label, source=outcome.model_dir)}, {
        TWIN: outcome.model_dir
    }


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
    out: list[Path] = []
    for p in named:
        if isinstance(p, str | PathLike):
            out.extend(_expanded(p, spec, strict=False))
    return out


def _expanded(path: str | PathLike[str], spec: Spec, *, strict: bool = True) -> tuple[Path, ...]:
    """The files a spec path names: itself, or every match of a glob (issue 17).

    ``strict``: a glob matching nothing is bad input naming the spec field; otherwise no files.
    """
    from governance.data.globs import expand, is_glob

    if not is_glob(path):
        return (Path(path),)
    is_log = spec.model.predictions is not None and str(path) == str(spec.model.predictions)
    field_name = "model.predictions" if is_log else "data.eval"
    if str(path) == str(getattr(spec.data, "train", None)):
        field_name = "data.train"
    try:
        return expand(path, source=spec.source, field=field_name)
    except InputError:
        if strict:
            raise
        return ()


def _hashed(name: str, path: str | PathLike[str], spec: Spec) -> dict[str, Path]:
    """``{name: file}`` for a file, ``{name[i]: file}`` for each match of a glob."""
    from governance.data.globs import is_glob

    if not is_glob(path):
        return {name: Path(path)}
    return {f"{name}[{i}]": f for i, f in enumerate(_expanded(path, spec, strict=False))}


def _model_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith("."))


def _subject_info(
    spec: Spec, subject: _Subject, hashes: _HashCache, *, shown: Callable[[Path], str] = str
) -> dict[str, Any]:
    data = {
        key: {"path": str(file), "sha256": hashes(file)}
        for split, path in subject.bundle.paths.items()
        if path is not None
        for key, file in _hashed(split, path, spec).items()
        if file.is_file()
    }
    info: dict[str, Any] = {
        "data": data,
        "data_source": spec.data.source if spec.data.source is not None else subject.bundle.source,
        "data_license": spec.data.license if spec.data.license is not None else subject.bundle.license,
        "label": subject.bundle.label,
        "classes": list(subject.bundle.classes),
        "sensitive": list(subject.bundle.sensitive),
        "rows": {
            "eval": len(subject.eval_predictions.y_true) if subject.counted is None else subject.counted.rows
        }
        | ({} if subject.train_predictions is None else {"train": len(subject.train_predictions.y_true)}),
    }
    if spec.model.predictions is not None and subject.model_dir is None:
        path = Path(spec.model.predictions)
        info["predictions"] = (
            {"path": str(path), "sha256": hashes(path)}
            if path.is_file()
            else {
                "path": str(path),
                "files": {str(f): hashes(f) for f in _expanded(path, spec, strict=False)},
            }
        )
        if subject.counted is not None:
            info["engine"] = subject.counted.engine
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
        if p is not None:
            for key, file in _hashed(f"data.{split}", p, spec).items():
                if file.is_file():
                    inputs[key] = file
    if spec.model.predictions is not None and subject.model_dir is None:
        inputs.update(_hashed("predictions", spec.model.predictions, spec))
    if subject.model_dir is None and subject.handle is not None and spec.model.weights is not None:
        inputs["model/weights"] = Path(spec.model.weights)
    if subject.model_dir is not None:
        for p in _model_files(subject.model_dir):
            inputs[f"model/{p.relative_to(subject.model_dir)}"] = p
    for role, folder in subject.companion_dirs.items():
        for p in _model_files(folder):
            inputs[f"{role}/{p.relative_to(folder)}"] = p
    for key, value in (("policy", policy), ("waivers", waivers)):
        if isinstance(value, str | PathLike) and Path(value).is_file():
            inputs[key] = Path(value)
    for name, files in input_files(spec).items():
        for i, p in enumerate(files):
            if p.is_file():
                inputs[f"audits.{name}" + (f".{i}" if i else "")] = p
    # -- evidence (issue 14): every file of the folder and every input, paths relative to the folder.
    from governance.evidence.hooks import write_audit_manifest

    outs = {k: Path(p) for k, p in outputs.items() if k not in ("manifest", "model", *subject.companion_dirs)}
    write_audit_manifest(
        path.parent, inputs, outputs=outs, hashes=hashes, tool_version=__version__, trusted_code=trusted_code
    )


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


# -- mitigation -----------------------------------------------------------------------------------

ERR_NO_MITIGATION = "required by `governance mitigate`: constraint, attribute (and optionally tol)"
ERR_NO_SCORES = "threshold mitigation needs the model's scores; {what} has none ({why})"


def run_mitigation(
    spec: Spec,
    out_dir: str | PathLike[str],
    *,
    method: str = "threshold",
    model_dir: str | PathLike[str] | None = None,
    device: str = "auto",
    force: bool = False,
    progress: bool = True,
    report_formats: Sequence[str] = ("html",),
    trust_code: bool = False,
) -> RunOutcome:
    """Mitigate the spec's model (or decision log) and write results with every metric before/after.

    Writes ``results.json`` (a ``mitigation`` section), the reports, ``mitigation_split.csv``
    (which eval row fitted the thresholds and which measured them), the decision rule
    (``decision_rule.json``: inside ``out/model`` beside a copy of the model, where there is a
    model; in ``out`` for a decision log) and ``manifest.json`` hashing all of it.

    Raises
    ------
    InputError
        No ``mitigation`` block, an attribute missing from the data, no scores, a group too small
        for the calibration split.
    """
    from governance.models.decision_rule import RULE_FILE

    if method not in MITIGATION_METHODS:
        expected = " or ".join(MITIGATION_METHODS)
        raise InputError(None, "--method", f"unknown method {method!r}; expected {expected}")
    m = spec.mitigation
    if m is None:
        raise InputError(spec.source, "mitigation", ERR_NO_MITIGATION)
    if method == "reweigh":
        _check_reweighable(spec)
    from governance._output_folder import check_target, output_folder

    out = check_output_dir(out_dir)
    check_target(out, marks=AUDIT_MARKS)
    factory = _trusted_factory(spec, trust_code)
    started = _now()
    # As in run_audit: the report stage's imports are paid by a forked worker while the data
    # loads and the thresholds are fitted; forked before the hashing thread starts.
    worker = _start_report_worker(tuple(report_formats))
    try:
        hashes = _HashCache()
        hashes.prefetch(_input_files(spec, None, None))
        ours = ("results.json", "manifest.json", "report.", "mitigation_split.csv", RULE_FILE, "model")
        # Like an audit folder: staged beside --out, swapped in whole, under the lock on --out.
        into = _reweigh_into if method == "reweigh" else _mitigate_into
        with output_folder(out, marks=AUDIT_MARKS, ours=ours) as staging:
            job = _MitigationJob(
                spec=spec,
                out=staging,
                started=started,
                hashes=hashes,
                method=method,
                model_dir=model_dir,
                device=device,
                force=force,
                progress=progress,
                report_formats=tuple(report_formats),
                factory=factory,
                worker=worker,
            )
            outcome_paths = into(job)
    finally:
        if worker is not None:
            worker.close()
    results, paths = outcome_paths
    shown = {k: out / Path(p).relative_to(staging) for k, p in paths.items()}
    return RunOutcome(results=results, check_report=None, paths=shown)


@dataclass(frozen=True)
class _MitigationJob:
    """One ``governance mitigate`` run, as each method's writer gets it: the spec, the staging
    folder ``out``, and the command's settings."""

    spec: Spec
    out: Path
    started: str
    hashes: _HashCache
    method: str
    model_dir: str | PathLike[str] | None
    device: str
    force: bool
    progress: bool
    report_formats: tuple[str, ...]
    factory: str | None
    worker: Any = None

    @property
    def quiet(self) -> Spec:
        """The spec without its audits: mitigation measures its own section only."""
        return self.spec.model_copy(update={"audits": {}})

    def prepare(self, model_dir: str | PathLike[str] | None) -> _Subject:
        """The subject (data, model, predictions) as an audit of :attr:`quiet` prepares it."""
        return _prepare(
            self.quiet,
            self.out,
            model_dir=model_dir,
            device=self.device,
            force=self.force,
            progress=self.progress,
            factory=self.factory,
        )

    def results(self, subject: _Subject, section: Any) -> Results:
        """The run's results: the one ``section``, about ``subject``."""
        info = _run_info(self.spec, subject, self.started, command=f"mitigate --method {self.method}")
        return Results.from_sections(info, [section], subject=_subject_info(self.spec, subject, self.hashes))

    def finish(
        self, results: Results, subject: _Subject, paths: dict[str, Path]
    ) -> tuple[Results, dict[str, Path]]:
        """results.json, the reports and the manifest (of ``subject``'s files too), beside ``paths``."""
        paths["results"] = self.out / "results.json"
        save_results(results, paths["results"])
        paths.update(_write_reports(results, self.out, None, self.report_formats, self.worker))
        paths["manifest"] = self.out / "manifest.json"
        _write_manifest(paths["manifest"], self.spec, subject, paths, self.hashes, policy=None, waivers=None)
        return results, paths


def _mitigate_into(job: _MitigationJob) -> tuple[Results, dict[str, Path]]:
    """Everything ``run_mitigation`` writes with the threshold method, into the staging folder."""
    import shutil

    import numpy as np

    from governance.mitigation.run import mitigate_eval_predictions
    from governance.mitigation.section import mitigation_section
    from governance.models.decision_rule import RULE_FILE

    spec, out = job.spec, job.out
    m = spec.mitigation
    assert m is not None
    with _progress(job.progress) as bar:
        with bar.step("loading data"):
            subject = job.prepare(job.model_dir)
        bundle = subject.bundle
        source = bundle.paths.get("eval") or spec.model.predictions or spec.source
        if m.attribute not in bundle.eval.columns:
            raise InputError(source, m.attribute, "column missing: mitigation.attribute names it")
        pred = subject.eval_predictions
        if pred.y_score is None or len(bundle.classes) != 2:
            why = "not a binary task" if len(bundle.classes) != 2 else "no y_score column"
            raise InputError(source, "y_score", ERR_NO_SCORES.format(what=source, why=why))
        with bar.step("mitigating"):
            try:
                outcome = mitigate_eval_predictions(m, pred, bundle, seed=spec.seed)
            except ValueError as exc:
                raise InputError(source, m.attribute, str(exc)) from None
    results = job.results(subject, mitigation_section(outcome, method=job.method))
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    part = np.full(len(pred.y_true), ",held_out", dtype=object)
    part[outcome.split.calibration] = ",calibration"
    split_rows = map(str.__add__, map(str, range(len(part))), part.tolist())
    paths["split"] = out / "mitigation_split.csv"
    atomic_write_text(paths["split"], "row,part\n" + "\n".join(split_rows) + "\n")
    rule_json = json.dumps(outcome.rule.to_dict(), indent=2) + "\n"
    if subject.model_dir is not None:
        target = out / "model"
        if subject.model_dir.resolve() != target.resolve():
            # A copy of the audited model beside its rule: the folder then decides as it was mitigated.
            shutil.copytree(subject.model_dir, target)
        atomic_write_text(target / RULE_FILE, rule_json)
        subject = replace(subject, model_dir=target)
        paths["model"] = target
    else:
        paths["decision_rule"] = out / RULE_FILE
        atomic_write_text(paths["decision_rule"], rule_json)
    return job.finish(results, subject, paths)


# -- reweighing (issue 16) ------------------------------------------------------------------------

#: ``governance mitigate --method``: post-processing thresholds, or Kamiran-Calders reweighing.
MITIGATION_METHODS: tuple[str, ...] = ("threshold", "reweigh")
ERR_REWEIGH_TRAINS = (
    "reweigh retrains the model with per-sample weights; {why} (threshold mitigation works without training)"
)
ERR_REWEIGH_BINARY = "reweigh mitigation needs a binary task (its frontier measures a binary disparity)"
#: Where the strength sweep's models are trained, inside the staging folder (removed at the end).
SWEEP_DIR = ".reweigh-sweep"


def _check_reweighable(spec: Spec) -> None:
    """Bad input for reweighing, found from the spec alone (before any data is read or trained)."""
    if spec.model.predictions is not None:
        why = "a predictions-only spec (model.predictions) has no model to train"
        raise InputError(spec.source, "model.predictions", ERR_REWEIGH_TRAINS.format(why=why))
    if spec.model.weights is not None:
        why = "a spec with fixed model.weights is not trained here"
        raise InputError(spec.source, "model.weights", ERR_REWEIGH_TRAINS.format(why=why))
    if spec.train is None:
        raise InputError(spec.source, "train", ERR_REWEIGH_TRAINS.format(why="the spec has no train section"))
    if spec.model.architecture == "hf":
        from governance.train.api import ERR_HF_WEIGHTS

        raise InputError(spec.source, "model.architecture", ERR_HF_WEIGHTS)
    if spec.task.value != "binary_classification":
        raise InputError(spec.source, "task", ERR_REWEIGH_BINARY)


def _reweigh_into(job: _MitigationJob) -> tuple[Results, dict[str, Path]]:
    """Kamiran-Calders reweighing into the staging folder ``out``: the unweighted model (``s = 0``,
    or ``--model``), one retrained model per strength, the frontier, the chosen model as
    ``out/model``."""
    import shutil

    from governance.data.loading import load_bundle
    from governance.mitigation.reweigh import STRENGTHS, kamiran_calders, mitigate_reweigh
    from governance.mitigation.section import reweigh_section
    from governance.models.artifacts import read_ledger
    from governance.models.handle import load_handle

    spec, out, device, force, factory = job.spec, job.out, job.device, job.force, job.factory
    m = spec.mitigation
    assert m is not None
    quiet = job.quiet
    target = out / "model"
    runs: list[dict[str, Any]] = []
    model_dir = job.model_dir
    with _progress(job.progress) as bar:
        with bar.step("loading data"):
            bundle = load_bundle(quiet)
            if bundle.train is None:
                raise InputError(
                    spec.source, "data.train", "reweigh retrains the model: a training file is required"
                )
            try:
                weights = kamiran_calders(
                    bundle.train[m.attribute],
                    bundle.train[bundle.label],
                    attribute=m.attribute,
                    label=bundle.label,
                )
            except ValueError as exc:
                raise InputError(bundle.paths.get("train") or spec.source, m.attribute, str(exc)) from None
        if model_dir is None:
            with bar.step("training the unweighted model"):
                runs.append(_train_weighted(quiet, target, bundle, weights, 0.0, device, force, factory))
            model_dir = target
        subject = job.prepare(model_dir)
        if not runs:  # --model: the unweighted point is the given model
            runs.append({"strength": 0.0, "seconds": None, "train_seconds": None, "ledger": subject.ledger})
        candidates: dict[float, Any] = {}
        with bar.step(f"retraining at {len(STRENGTHS)} weight strengths"):
            for strength in STRENGTHS:
                folder = out / SWEEP_DIR / _strength_dir(strength)
                runs.append(_train_weighted(quiet, folder, bundle, weights, strength, device, force, factory))
                handle = load_handle(folder, device, factory=factory)
                candidates[strength] = predict(handle, bundle.eval, bundle.label, source=folder).y_pred
        with bar.step("mitigating"):
            outcome = mitigate_reweigh(
                subject.eval_predictions.y_true,
                subject.eval_predictions.y_pred,
                candidates,
                {a: bundle.eval[a] for a in bundle.sensitive},
                weights=weights,
                classes=(bundle.classes[0], bundle.classes[1]),
                attribute=m.attribute,
                constraint=m.constraint,
                seed=spec.seed,
            )
    if outcome.strength > 0:
        if target.exists():
            shutil.rmtree(target)
        shutil.move(out / SWEEP_DIR / _strength_dir(outcome.strength), target)
    elif subject.model_dir is not None and subject.model_dir.resolve() != target.resolve():
        shutil.copytree(subject.model_dir, target)  # the unweighted --model is already the best choice
    shutil.rmtree(out / SWEEP_DIR, ignore_errors=True)
    subject = replace(subject, model_dir=target, ledger=read_ledger(target))
    ledgers = [run.pop("ledger") for run in runs]
    for run, ledger in zip(runs, ledgers):
        run["epsilon"] = ((ledger or {}).get("privacy") or {}).get("epsilon")
    sweep_epsilon, delta = _composed_epsilon(ledgers)
    preprocessor = getattr(subject.handle, "preprocessor", None)
    section = reweigh_section(
        outcome,
        sensitive_is_feature=m.attribute in tuple(getattr(preprocessor, "features", ()) or ()),
        sweep=runs,
        sweep_epsilon=sweep_epsilon,
        delta=delta,
    )
    return job.finish(job.results(subject, section), subject, {"model": target})


def _strength_dir(strength: float) -> str:
    return f"strength_{strength:g}"


def _train_weighted(
    spec: Spec,
    folder: Path,
    bundle: DataBundle,
    weights: Any,
    strength: float,
    device: str,
    force: bool,
    factory: str | None,
) -> dict[str, Any]:
    """Train the spec's model with weights ``w^strength`` into ``folder``; its sweep row (with the
    ledger). Every run of the sweep, the unweighted one (``s = 0``, all weights 1) included, names
    the weights and the selection in its ``privacy.scope.outside``."""
    import time

    from governance.mitigation.reweigh import STRENGTHS
    from governance.train.api import train
    from governance.train.sample_weights import SampleWeights

    attribute, label = weights.attribute, weights.label
    outside = (
        {
            "name": "reweighing_weights",
            "where": "training.json",
            "columns": [attribute, label],
            "detail": f"Kamiran-Calders weights from the {attribute} × {label} counts of the train rows "
            "(each cell's weight is in training.json and the mitigation results); the run's ε treats "
            "them as fixed numbers",
        },
        {
            "name": "reweighing_selection",
            "where": "results.json",
            "columns": [],
            "detail": f"this model was chosen among the {len(STRENGTHS) + 1} runs of a reweighing "
            "strength sweep on the same train rows; the mitigation results give their composed ε "
            "(mitigation.reweigh.sweep_epsilon)",
        },
    )
    cells = [
        {"group": c.group, "label": c.label, "rows": c.rows, "weight": c.weight**strength}
        for c in weights.cells
    ]
    started = time.perf_counter()
    trained = train(
        spec,
        folder,
        bundle=bundle,
        force=force,
        device=device,
        progress=False,
        trust_code=factory is not None,
        lock=False,
        sample_weights=SampleWeights(
            values=weights.at(strength),
            origin=f"Kamiran-Calders reweighing on {attribute} × {label}",
            outside=outside,
            details={"strength": strength, "cells": cells},
        ),
    )
    return {
        "strength": strength,
        "seconds": time.perf_counter() - started,
        "train_seconds": trained.ledger.get("seconds"),
        "ledger": trained.ledger,
    }


def _composed_epsilon(ledgers: Sequence[Mapping[str, Any] | None]) -> tuple[float | None, float | None]:
    """The ε of every DP run in ``ledgers`` together (their accountant histories composed), at the
    first run's δ and accountant; (None, None) when none was private."""
    private = [ledger["privacy"] for ledger in ledgers if ledger and ledger.get("privacy")]
    if not private:
        return None, None
    from governance.train.dp import epsilon_for

    history = [tuple(h) for p in private for h in p.get("accountant_history") or ()]
    delta = float(private[0]["delta"])
    return epsilon_for(history, delta, str(private[0]["accountant"])), delta
