"""`governance policy validate|list`."""

from __future__ import annotations

from governance.cli import main


def test_validate_builtin_and_file(capsys, write_file):
    assert main(["policy", "validate", "eu-ai-act-high-risk"]) == 0
    out = capsys.readouterr().out
    assert "OK: policy eu-ai-act-high-risk 1.0.0" in out and "extends baseline" in out
    path = write_file(
        "p.yaml",
        "name: x\nrules:\n  - {id: a, metric: performance.accuracy, op: '>=', threshold: 0.5, threshold_source: pack}\n",
    )
    assert main(["policy", "validate", str(path)]) == 0
    assert "a cites no regulation" in capsys.readouterr().err


def test_validate_bad_policy_exit_2(capsys, write_file):
    path = write_file("p.yaml", "name: x\nrules:\n  - {id: a, metric: perf.acc, op: '>=', threshold: 0.5}\n")
    assert main(["policy", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: rules[a].metric:" in err and len(err.strip().splitlines()) == 1


def test_list(capsys):
    assert main(["policy", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("baseline", "eu-ai-act-high-risk", "nist-ai-rmf", "employment-four-fifths"):
        assert name in out
