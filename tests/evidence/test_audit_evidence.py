"""`governance audit` end to end: manifest, history row, --sign, and what the report shows of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance.cli import main
from governance.evidence.manifest import MANIFEST_NAME, SIGNATURE_NAME, load_manifest
from governance.evidence.store import check_chain, list_audits
from tests.test_pipeline import _decision_log, write_spec


def test_audit_records_itself_signs_and_the_report_shows_it(
    tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "h.sqlite"
    spec = write_spec(tmp_path, _decision_log())
    common = ["--store", str(store), "--policy", "baseline"]
    main(["audit", str(spec), "--out", str(tmp_path / "first"), *common])
    # The decisions change: the second audit of the spec shows what moved since the first.
    frame = _decision_log(seed=1)
    frame.to_parquet(tmp_path / "log.parquet")
    out = tmp_path / "second"
    main(["audit", str(spec), "--out", str(out), *common, "--sign", str(keys["key"])])
    capsys.readouterr()

    records = list_audits(store=store)
    assert [r.id for r in records] == [2, 1]
    results = json.loads((out / "results.json").read_text())
    assert records[0].results == results  # the whole results.json
    assert records[0].verdict in ("PASSED", "FAILED")
    assert records[0].model_digest == results["subject"]["predictions"]["sha256"]
    assert check_chain(store=store) == []

    manifest = load_manifest(out / MANIFEST_NAME)
    assert set(manifest.files) == {"results.json", "report.html"}
    assert manifest.inputs["spec"]["path"] == "../spec.yaml"
    assert (out / SIGNATURE_NAME).is_file()
    assert main(["verify", str(out), "--key", str(keys["pub"])]) == 0
    assert main(
        ["check", str(out / "results.json"), "--policy", "baseline", "--require-signature", str(keys["pub"])]
    ) in (0, 1)
    assert "evidence.integrity" in capsys.readouterr().out
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            str(out),
            "--signature",
            str(out / SIGNATURE_NAME),
            "--public_key",
            str(keys["pub"]),
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr

    signoff = results["run"]["signoff"]
    assert signoff == {k: manifest.signoff[k] for k in ("signer", "key_fingerprint", "signed_at")} | {
        "what": signoff["what"]
    }
    html = (out / "report.html").read_text()
    assert signoff["key_fingerprint"] in html and "Evidence signed by" in html
    since = results["run"]["since_last_audit"]
    assert since["id"] == 1 and since["changes"]
    assert "Since the last audit of this spec" in html
    changed = since["changes"][0]["metric"]
    assert f"<code>{changed}</code>" in html
    # The first audit had no predecessor: no such table.
    assert "since_last_audit" not in json.loads((tmp_path / "first" / "results.json").read_text())["run"]

    assert main(["history", "--store", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == "2"
    assert main(["diff", "1", "2", "--store", str(store), "--format", "markdown"]) == 0
    assert "| `" in capsys.readouterr().out


def test_audit_with_a_bad_signing_key_is_exit_2_before_any_work(
    tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, _decision_log())
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--sign", str(keys["pub"])]) == 2
    assert "expected an unencrypted PEM private key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_report_shows_the_datasets_cumulative_epsilon_beside_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.evidence.conftest import results_doc

    doc = results_doc()
    doc["run"]["privacy_budget"] = {
        "data_digest": "f" * 64,
        "runs": 3,
        "cumulative_epsilon": 4.2,
        "method": "prv",
        "delta": 1e-5,
        "unfinished_runs": 0,
        "run_epsilon": 2.99,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    assert main(["report", str(path), "--format", "markdown", "--output", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "| This run | ε = 2.99 |" in md
    assert (
        "| The dataset, all recorded DP runs | ε = 4.2 over 3 runs (composed with the prv accountant) |" in md
    )


def test_two_concurrent_audits_record_both_rows_in_one_chain(tmp_path: Path) -> None:
    import os

    store = tmp_path / "h.sqlite"
    spec = write_spec(tmp_path, _decision_log())
    env = {
        **os.environ,
        "GOVERNANCE_STORE": str(store),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "governance",
                "audit",
                str(spec),
                "--out",
                str(tmp_path / f"out{i}"),
                "--no-progress",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    records = list_audits(store=store)
    assert sorted(r.id for r in records) == [1, 2]
    assert check_chain(store=store) == []


def test_audit_with_an_unwritable_store_is_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path, _decision_log())
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert (
        main(["audit", str(spec), "--out", str(tmp_path / "out"), "--store", str(blocker / "h.sqlite")]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot create the history store" in err
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--store", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
