"""DP training across processes (issue 17): the 2-process ledger and weights equal one process's,
resume with 2 processes, the rank shares of the Poisson batch, bad input, backend choice."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from governance.cli import build_parser, main
from governance.train.distributed import (
    ERR_FAST,
    RankShare,
    World,
    argv_for_ranks,
    backend_for,
    device_for,
    engine_across_processes,
    free_port,
    world_from_env,
)
from governance.train.sampling import PoissonBatchSampler
from tests.data.helpers import spec_dict, write_spec, write_split
from tests.train._ddp_worker import ddp_trainer, rank_main

#: The privacy numbers a 2-process run must share with one process, exactly.
SAME_PRIVACY = (
    "accountant",
    "noise_multiplier",
    "sample_rate",
    "steps",
    "max_grad_norm",
    "delta",
    "epsilon",
    "target_epsilon",
    "accountant_history",
    "noise_source",
    "poisson_sampling",
    "stopped_early",
)
SAME_RUN = ("epochs", "planned_epochs", "steps", "batch_size", "rows", "data_digest", "seed")


# -- the rank shares -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 300),
    rate=st.floats(0.001, 1.0),
    steps=st.integers(1, 20),
    size=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_rank_shares_partition_the_one_process_batch(
    rows: int, rate: float, steps: int, size: int, seed: int
) -> None:
    def sampler() -> PoissonBatchSampler:
        gen = torch.Generator().manual_seed(seed)
        return PoissonBatchSampler(num_samples=rows, sample_rate=rate, steps=steps, generator=gen)

    one = [b.tolist() for b in sampler()]
    shares = [list(RankShare(sampler(), World(rank=r, size=size))) for r in range(size)]
    assert all(len(s) == steps for s in shares)  # every rank steps the same number of times
    for step, batch in enumerate(one):
        parts = [shares[r][step].tolist() for r in range(size)]
        assert sorted(i for part in parts for i in part) == batch  # disjoint, and the union is the batch
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced
    share = RankShare(sampler(), World(rank=0, size=size))
    assert (share.sample_rate, share.steps, share.num_samples) == (rate, steps, rows)


# -- backend, device, environment ------------------------------------------------------------


def test_backend_and_device_follow_the_device() -> None:
    world = World(rank=3, size=4, local_rank=1)
    assert backend_for("cpu") == "gloo" and backend_for("cuda") == "nccl" and backend_for("cuda:1") == "nccl"
    assert device_for("cuda", world) == "cuda:1"  # one GPU per local rank
    assert device_for("cpu", world) == "cpu" and device_for("cuda", None) == "cuda"


def test_processes_are_bounded_by_gpus_on_cuda_and_cores_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance.errors import InputError
    from governance.train.distributed import check_processes

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_processes(2, "cuda")
    with pytest.raises(InputError, match="one GPU per process"):
        check_processes(3, "cuda")
    check_processes(os.cpu_count() or 1, "cpu")
    with pytest.raises(InputError, match="one process per CPU core"):
        check_processes((os.cpu_count() or 1) + 1, "cpu")


def test_world_comes_from_torchrun_variables() -> None:
    assert world_from_env({}) is None
    assert world_from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None  # one process: no group
    assert world_from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}) == (2, 4, 0)


def test_ranks_get_the_same_command_line_minus_processes() -> None:
    parser = build_parser()
    argv = ["--debug", "train", "s.yaml", "--out", "o", "--resume", "--device", "cpu", "--processes", "2"]
    args = parser.parse_args(argv)
    again = parser.parse_args(argv_for_ranks(args.command_parser, args, "train"))
    assert again.processes is None
    assert {k: v for k, v in vars(again).items() if k != "processes"} == {
        k: v for k, v in vars(args).items() if k != "processes"
    }


# -- bad input: one line, exit 2, nothing spawned --------------------------------------------


def _dp_spec(tmp: Path, name: str = "spec.yaml", **privacy: Any) -> Path:
    write_split(tmp)
    # RDP: the test is about the ledger being the same, and RDP calibrates in milliseconds.
    settings_ = {"target_epsilon": 5.0, "delta": 1e-3, "accountant": "rdp", **privacy}
    return write_spec(tmp, spec_dict(train__privacy=settings_), name)


@pytest.mark.parametrize("processes", ["0", "-1", str((os.cpu_count() or 1) + 1)])
def test_impossible_process_counts_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], processes: str
) -> None:
    spec = _dp_spec(tmp_path)
    assert main(["train", str(spec), "--out", str(tmp_path / "out"), "--processes", processes]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--processes" in err[0] and f"got {processes}" in err[0]
    assert not (tmp_path / "out").exists()


def test_non_private_training_is_refused_across_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_split(tmp_path)
    spec = write_spec(tmp_path, spec_dict())
    assert main(["train", str(spec), "--out", str(tmp_path / "out"), "--processes", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "train.privacy" in err[0]


def test_processes_must_agree_with_torchrun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _dp_spec(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", str(spec), "--out", str(tmp_path / "out"), "--processes", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WORLD_SIZE 2" in err[0]


# -- 2 gloo processes against one ------------------------------------------------------------


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


@pytest.mark.slow
def test_two_processes_spend_the_one_process_ledger_and_reach_its_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The ledger of ``--processes 2`` equals one process's (ε to 1e-12; only world_size and the
    times differ), and with the noise drawn from the seed (rank 0 draws what one process draws)
    the weights agree to 1e-6: the rank shares cover the one-process batch and the noise is
    added once (twice, or on the wrong scale, would move the weights by the noise's size)."""
    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path / "store.sqlite"))
    spec = _dp_spec(tmp_path, reproducible_noise=True)
    assert main(["train", str(spec), "--out", str(tmp_path / "one"), "--no-progress"]) == 0
    assert main(["train", str(spec), "--out", str(tmp_path / "two"), "--processes", "2"]) == 0
    assert "on 2 processes" in capfd.readouterr().err  # rank 0 speaks; the others are quiet

    one = json.loads((tmp_path / "one" / "training.json").read_text())
    two = json.loads((tmp_path / "two" / "training.json").read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    for key in SAME_RUN:
        assert two[key] == one[key], key
    for key in (*SAME_PRIVACY, "engine", "engine_proof", "grad_sample_mode"):
        assert two["privacy"][key] == one["privacy"][key], key
    assert abs(two["privacy"]["epsilon"] - one["privacy"]["epsilon"]) <= 1e-12
    assert [h["epsilon"] for h in two["history"]] == [h["epsilon"] for h in one["history"]]
    assert two["privacy"]["engine"] == "fused-mlp"  # the fused step runs across processes too

    reference = _weights(tmp_path / "one")
    for name, tensor in _weights(tmp_path / "two").items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6)
    # Rank 0 alone wrote: the model folders and nothing else (no checkpoints, staging, locks).
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".two", "two")))
    assert left == ["two"]


@pytest.mark.slow
def test_two_processes_resume_an_interrupted_run_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--processes 2 --resume`` continues an interrupted run's checkpoint (rank 0 reads it, both
    ranks continue) to the uninterrupted run's ledger and weights; the checkpoint is gone after.
    The interrupted run was one process: the mechanism is the same, so the checkpoint is too."""
    from governance.train.trainer import Trainer

    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path / "store.sqlite"))
    spec = _dp_spec(tmp_path, reproducible_noise=True)
    assert main(["train", str(spec), "--out", str(tmp_path / "one"), "--no-progress"]) == 0

    save = Trainer._save_checkpoint

    def save_then_stop(self: Trainer, *args: Any) -> None:
        save(self, *args)
        if args[-1]["epoch"] == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_save_checkpoint", save_then_stop)
        assert main(["train", str(spec), "--out", str(tmp_path / "two"), "--no-progress"]) == 130
    assert (tmp_path / ".two.checkpoint" / "state.json").is_file() and not (tmp_path / "two").exists()
    argv = ["train", str(spec), "--out", str(tmp_path / "two"), "--processes", "2", "--resume"]
    assert main(argv) == 0

    one = json.loads((tmp_path / "one" / "training.json").read_text())
    two = json.loads((tmp_path / "two" / "training.json").read_text())
    assert two["resumed"] and two["attempts"] == 2 and two["world_size"] == 2
    for key in SAME_PRIVACY:
        assert two["privacy"][key] == one["privacy"][key], key
    assert [h["epsilon"] for h in two["history"]] == [h["epsilon"] for h in one["history"]]
    reference = _weights(tmp_path / "one")
    for name, tensor in _weights(tmp_path / "two").items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6)
    assert not (tmp_path / ".two.checkpoint").exists()


# -- which engine runs across processes -----------------------------------------------------


def _proofs(requested: str) -> Any:
    from governance.train.clipping.proof import prove

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2))
    criterion = nn.CrossEntropyLoss()
    batches = (torch.randn(6, 4), torch.randn(4, 4))
    first = prove(model, criterion, batches, requested=requested)
    return first, lambda: prove(model, criterion, batches, requested="auto", fast_allowed=False)


def test_the_fast_path_routes_to_opacus_across_processes_and_says_why() -> None:
    proof, without_fast = _proofs("auto")
    assert proof.engine == "fast"  # one process: the single-pass path
    routed = engine_across_processes(proof, "auto", without_fast)
    assert routed.engine.startswith("opacus-") and routed.refused["fast"] == ERR_FAST
    assert "max_physical_batch_size" not in json.dumps(routed.to_dict())  # only the true reason
    with pytest.raises(ValueError, match="'fast' does not run across processes"):
        engine_across_processes(*_proofs("fast")[:1], "fast", without_fast)
    fused = type(proof)("fused-mlp", True, {})
    assert engine_across_processes(fused, "auto", without_fast) is fused  # fused steps run as they are


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hooks", "auto"])  # Opacus' DistributedDPOptimizer; the fused step
def test_two_processes_resume_after_a_crash_and_match_one_uninterrupted_process(
    tmp_path: Path, mode: str
) -> None:
    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    with pytest.warns(UserWarning, match="reproducible_noise"):
        reference = ddp_trainer(None, mode).fit()
    args = (2, free_port(), str(tmp_path), False, mode)
    mp.start_processes(rank_main, args=args, nprocs=2, start_method="spawn")
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 1 and not (tmp_path / "ledger.json").exists()
    args = (2, free_port(), str(tmp_path), True, mode)
    mp.start_processes(rank_main, args=args, nprocs=2, start_method="spawn")

    ledger = json.loads((tmp_path / "ledger.json").read_text())
    assert ledger["resumed"] and ledger["attempts"] == 2 and ledger["world_size"] == 2
    assert ledger["privacy"]["engine"] == reference.ledger["privacy"]["engine"]
    for key in SAME_PRIVACY:
        assert ledger["privacy"][key] == reference.ledger["privacy"][key], key
    assert [h["steps"] for h in ledger["history"]] == [h["steps"] for h in reference.ledger["history"]]
    weights, other = load_file(tmp_path / "w0.st"), load_file(tmp_path / "w1.st")
    for name, tensor in reference.model.state_dict().items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-6)
        assert torch.equal(other[name], weights[name])  # the ranks never drift apart


# -- GPUs ------------------------------------------------------------------------------------


@pytest.mark.gpu
def test_more_processes_than_gpus_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _dp_spec(tmp_path)
    too_many = str(torch.cuda.device_count() + 1)
    argv = ["train", str(spec), "--out", str(tmp_path / "out"), "--processes", too_many, "--device", "cuda"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one GPU per process" in err[0]


@pytest.mark.gpu
@pytest.mark.slow
def test_two_gpus_train_with_nccl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two GPUs")
    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path / "store.sqlite"))
    spec = _dp_spec(tmp_path, reproducible_noise=True)
    out = tmp_path / "two"
    assert main(["train", str(spec), "--out", str(out), "--processes", "2", "--device", "cuda"]) == 0
    ledger = json.loads((out / "training.json").read_text())
    assert ledger["world_size"] == 2 and ledger["device"] == "cuda:0"


# -- the launcher ----------------------------------------------------------------------------


def test_launcher_returns_rank_0s_exit_code_and_shows_only_its_output(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from governance.train.distributed import launch

    assert launch(["--version"], 2) == 0
    assert capfd.readouterr().out.count("governance ") == 2  # stdout is every rank's
    assert launch(["no-such-command"], 2) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-command" in err[0]  # rank 1's copy of the error is not shown
