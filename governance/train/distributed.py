"""DP training across processes: ``governance train --processes N`` and ``torchrun``.

One training, N processes (ranks), the same privacy mechanism as one process:

* **The same batches.** Every rank draws the *global* Poisson batch from the same seeded
  sampler (:class:`governance.train.sampling.PoissonBatchSampler`, identical generator state on
  every rank) and keeps its share, ``batch[rank::world_size]`` (:class:`RankShare`). The union of
  the shares is exactly the batch one process would draw, every rank takes the same number of
  steps (an empty share is still a step, so collectives never fall out of step), and the sample
  rate ``q = expected batch / rows`` and the steps are the one-process values.
  Opacus' ``DistributedUniformWithReplacementSampler`` is also Poisson overall, but it draws a
  different batch than one process (so weights could not be compared) and skips a rank's empty
  batch, which leaves that rank one collective behind the others.
* **The same sum, noised once.** Each rank clips its own rows; the clipped sums are
  all-reduced and the Gaussian noise ``N(0, σ²C²)`` is added on rank 0 only. The fused steps
  (``fused-mlp``, ``fused-sequential``) do it in :class:`SummedAcrossRanks` (the other ranks'
  steps run with σ = 0, their gradients are summed before the optimizer steps); Opacus' engines
  in its ``DistributedDPOptimizer`` (chosen by ``make_private`` because the module is wrapped in
  Opacus' ``DifferentiallyPrivateDistributedDataParallel``), with its per-parameter all-reduce
  replaced by one flat one (:func:`coalesce_reduction`). Either way the update is
  ``(Σ clipped + one noise draw) / expected batch``, the one-process update, so the accountant
  sees the same (σ, q, steps) and ε is identical. The single-pass ``fast`` path routes to Opacus
  (:func:`engine_across_processes`); ``training.json`` records the engine and ``world_size``.
* **Rank 0 writes.** Only rank 0 stages the model folder, writes checkpoints, the ledger and the
  budget row; on ``--resume`` it reads the checkpoint and sends it to the other ranks.

``--processes N`` starts N local ranks of the same ``governance train`` command with the
environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), so both launchers take one code path: gloo on CPU, NCCL on GPUs (one GPU per
local rank).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from governance.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "RankShare",
    "SummedAcrossRanks",
    "World",
    "argv_for_ranks",
    "backend_for",
    "broadcast_from_main",
    "check_processes",
    "check_same_data",
    "check_torchrun_agrees",
    "check_trainable_across_processes",
    "checkpoint_on_main",
    "coalesce_reduction",
    "device_for",
    "engine_across_processes",
    "joined",
    "launch",
    "launch_command",
    "needs_launch",
    "on_main",
    "staged_on_main",
    "sum_gradients",
    "world_from_env",
]

T = TypeVar("T")

ERR_PROCESSES = "expected a number of processes from 1 to {limit} ({why}), got {n}"
ERR_TORCHRUN = "--processes {n} disagrees with the WORLD_SIZE {size} torchrun set; pass one or the other"
ERR_TEXT = "--processes and torchrun train tabular and image models; Hugging Face models train in one process"
ERR_PLAIN = "--processes and torchrun run DP training (a train.privacy section); non-private training runs in one process"
ERR_DATA = "rank {rank} reads other rows than rank 0; every rank needs the same data files"
ERR_FAST = (
    "does not run across processes (a rank's share of a Poisson batch is often empty, which "
    "the single-pass path does not take for every layer); Opacus clips instead"
)
ERR_OTHER_RANK = "rank {rank} failed: {message}"
#: Seconds the launcher waits for the other ranks after one failed before it stops them.
GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class World:
    """This process's place in the training: its rank, the number of ranks, its local rank."""

    rank: int
    size: int
    local_rank: int = 0
    backend: str = "gloo"

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes."""
        return self.rank == 0

    def share(self, obj: T | None) -> T:
        """Rank 0's ``obj`` on every rank (a pickled broadcast among our own ranks)."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def agree(self, error: InputError | None) -> None:
        """Raise, on every rank, the first rank's :class:`InputError` (or nothing if none had one).

        Called after work only some ranks do (rank 0's lock on the output folder, its budget
        check), so that a refusal there ends every rank instead of leaving the others waiting in
        the next collective.
        """
        import torch.distributed as dist

        mine = None if error is None else (error.source, error.field, error.message)
        everyone: list[Any] = [None] * self.size
        dist.all_gather_object(everyone, mine)
        for rank, found in enumerate(everyone):
            if found is not None:
                if rank == self.rank and error is not None:
                    raise error
                source, field, message = found
                raise InputError(
                    source, field, message if rank == 0 else ERR_OTHER_RANK.format(rank=rank, message=message)
                )


def check_same_data(world: World, digest: str, source: str | None) -> None:
    """Every rank must train on the same rows (a node with another copy of the file would
    silently train on other data): compare the data digests, refuse on every rank if they differ."""
    import torch.distributed as dist

    everyone: list[Any] = [None] * world.size
    dist.all_gather_object(everyone, digest)
    odd = [rank for rank, d in enumerate(everyone) if d != everyone[0]]
    if odd:
        raise InputError(source, "data", ERR_DATA.format(rank=odd[0]))


def world_from_env(environ: Any = None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from ``torchrun``'s variables, or None in one process."""
    env = os.environ if environ is None else environ
    size = int(env.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return None
    return int(env.get("RANK", "0")), size, int(env.get("LOCAL_RANK", env.get("RANK", "0")))


def backend_for(device: str) -> str:
    """NCCL for CUDA devices, gloo for the CPU."""
    return "nccl" if device.startswith("cuda") else "gloo"


def device_for(device: str, world: World | None) -> str:
    """Each rank's device: ``cuda:LOCAL_RANK`` under a multi-rank CUDA run, else ``device``."""
    if world is None or not device.startswith("cuda"):
        return device
    return f"cuda:{world.local_rank}"


@contextlib.contextmanager
def joined(device: str) -> Iterator[World | None]:
    """Join the process group ``torchrun`` (or ``--processes``) described in the environment.

    Yields None in a single process; otherwise the :class:`World`, and the group is destroyed
    on the way out. ``device`` is the resolved device (``cpu``, ``cuda``): it picks the backend.
    """
    found = world_from_env()
    if found is None:
        yield None
        return
    import torch
    import torch.distributed as dist

    rank, size, local_rank = found
    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=size)
    try:
        yield World(rank=rank, size=size, local_rank=local_rank, backend=backend)
        # Leave together: a rank that tears its connections down while another still uses them
        # can abort gloo's transport (std::terminate) in either one. After an error there is no
        # barrier (the others may be gone); the launcher stops them.
        dist.barrier()
    finally:
        dist.destroy_process_group()


def on_main(world: World | None, work: Callable[[], T]) -> T | None:
    """Run ``work`` on rank 0 only (or here, in one process); its InputError ends every rank."""
    if world is None:
        return work()
    result: T | None = None
    error: InputError | None = None
    if world.is_main:
        try:
            result = work()
        except InputError as exc:
            error = exc
    world.agree(error)
    return result


@contextlib.contextmanager
def staged_on_main(
    world: World, stage: Callable[[], contextlib.AbstractContextManager[T]]
) -> Iterator[T | None]:
    """Enter ``stage()`` (the model folder's staging context) on rank 0 only; the other ranks
    get None. A refusal on rank 0 (another run holds the folder) ends every rank."""
    with contextlib.ExitStack() as stack:
        yield on_main(world, lambda: stack.enter_context(stage()))


def check_trainable_across_processes(spec: Any) -> None:
    """Only DP training of tabular/image models runs across processes (not Hugging Face
    fine-tuning, not non-private training: its batches are not sharded)."""
    if spec.model.architecture == "hf":
        raise InputError(spec.source, "model.architecture", ERR_TEXT)
    if spec.train is not None and spec.train.privacy is None:
        raise InputError(spec.source, "train.privacy", ERR_PLAIN)


class RankShare:
    """This rank's share of each global Poisson batch: ``batch[rank::world_size]``.

    ``batches`` yields the global batches (index tensors or lists); every rank builds it with the
    same generator state, so every rank sees the same global batch and the shares partition it.
    Attributes of the wrapped sampler (``generator``, ``sample_rate``, ``steps``,
    ``num_samples``) read through, so checkpoints and Opacus see the one-process sampler.
    """

    def __init__(self, batches: Any, world: World) -> None:
        self.batches = batches
        self.world = world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        rank, size = self.world.rank, self.world.size
        for batch in self.batches:
            yield batch[rank::size]

    def __getattr__(self, name: str) -> Any:
        if name in ("batches", "world"):
            raise AttributeError(name)
        return getattr(self.batches, name)


def wrap_module(model: nn.Module) -> nn.Module:
    """Opacus' DPDDP: rank 0's parameters broadcast to every rank; gradients are reduced by
    ``DistributedDPOptimizer`` after clipping and noise, never by autograd hooks."""
    from opacus.distributed import DifferentiallyPrivateDistributedDataParallel

    return DifferentiallyPrivateDistributedDataParallel(model)


def sum_gradients(params: Sequence[Any], world_size: int, *, mean: bool = False) -> None:
    """All-reduce (sum, or mean) the gradients of ``params`` as one flat tensor, in place.

    One collective per step instead of one per parameter (Opacus' ``reduce_gradients``): every
    collective waits for the slowest rank, and on a busy machine each wait costs a scheduling
    slice (docs/PERFORMANCE.md). The sum is elementwise, so the result equals the per-parameter
    one. A missing gradient counts as 0.
    """
    import torch
    import torch.distributed as dist

    params = [p for p in params if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    if mean:
        flat /= world_size
    offset = 0
    for p in params:
        n = p.numel()
        part = flat[offset : offset + n].view_as(p)
        if p.grad is None:
            p.grad = part.clone()
        else:
            p.grad.copy_(part)
        offset += n


def coalesce_reduction(optimizer: Any) -> Any:
    """Make Opacus' distributed optimizer reduce all gradients in one collective per step
    (:func:`sum_gradients`; its own ``reduce_gradients`` issues one per parameter)."""
    import types

    def reduce_gradients(self: Any) -> None:
        sum_gradients(self.params, self.world_size, mean=self.loss_reduction == "mean")

    if hasattr(optimizer, "reduce_gradients") and hasattr(optimizer, "world_size"):
        optimizer.reduce_gradients = types.MethodType(reduce_gradients, optimizer)
    return optimizer


def broadcast_from_main(model: nn.Module) -> None:
    """Rank 0's parameters and buffers on every rank (what DPDDP does for Opacus' engines): a
    user factory may initialise from its own randomness, and the ranks must start equal."""
    import torch
    import torch.distributed as dist

    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


class SummedAcrossRanks:
    """The fused steps across processes: their optimizer (``FastOptimizer``), with the gradients
    summed over the ranks before each step.

    Each rank's step leaves ``.grad = Σ clipped (its rows) / B + noise``, with ``B`` the global
    expected batch and the noise ``N(0, σC/B)`` drawn on rank 0 only (the other ranks' steps run
    with σ = 0). Summed over the ranks that is ``(Σ clipped + one noise draw) / B``: the
    one-process update. The accountant is stepped once per step, as in one process.
    """

    def __init__(self, optimizer: Any) -> None:
        import torch.distributed as dist

        self.optimizer = optimizer
        self.world_size = dist.get_world_size()

    def step(self) -> None:
        params = [p for group in self.optimizer.original_optimizer.param_groups for p in group["params"]]
        sum_gradients(params, self.world_size)
        self.optimizer.step()

    def __getattr__(self, name: str) -> Any:
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)


def engine_across_processes(proof: Any, requested: str, without_fast: Callable[[], Any]) -> Any:
    """The engine proof's choice, or Opacus' where the choice cannot run across processes.

    The fused steps (``fused-mlp``, ``fused-sequential``) run across processes (each rank clips
    its share, :class:`SummedAcrossRanks` sums, rank 0 noises). The single-pass ``fast`` path
    does not handle an empty batch for every layer (LayerNorm), and a rank's share of the batch
    is empty far more often than the whole batch, so it routes to Opacus: ``without_fast()`` is
    the proof rerun without the fast paths; the ledger's ``engine_proof.refused.fast`` says why.
    An explicit ``grad_sample_mode: fast`` is refused (ValueError).
    """
    from dataclasses import replace

    from governance.train.clipping.proof import FAST

    if proof.engine != FAST:
        return proof
    if requested == "fast":
        raise ValueError(f"grad_sample_mode 'fast' {ERR_FAST}")
    opacus = without_fast()
    refused = {**proof.refused, **{k: v for k, v in opacus.refused.items() if k not in ("fused", "fast")}}
    refused["fast"] = ERR_FAST
    return replace(opacus, refused=refused, checks={**proof.checks, **opacus.checks})


def check_processes(n: int, device: str, *, source: str = "--processes") -> None:
    """Refuse a number of local processes this machine cannot run: < 1, more than the CPU
    cores on the CPU (every extra rank only contends), more than the GPUs on CUDA (NCCL needs
    one GPU per rank)."""
    if device.startswith("cuda"):
        import torch

        limit, why = torch.cuda.device_count(), "one GPU per process"
    else:
        limit, why = os.cpu_count() or 1, "at most one process per CPU core"
    if not 1 <= n <= limit:
        raise InputError(source, None, ERR_PROCESSES.format(limit=limit, why=why, n=n))


def check_torchrun_agrees(n: int | None) -> None:
    """Under torchrun ``--processes`` may only repeat WORLD_SIZE."""
    found = world_from_env()
    if n is not None and found is not None and found[1] != n:
        raise InputError("--processes", None, ERR_TORCHRUN.format(n=n, size=found[1]))


def needs_launch(processes: int | None) -> bool:
    """Whether ``--processes`` asks this process to start the ranks (not already one of them)."""
    if processes is None or world_from_env() is not None:
        return False
    return processes != 1


def resolved(device: str) -> str:
    from governance.models.device import resolve_device

    return resolve_device(device)


def launch_command(spec: Any, args: Any, command: str) -> int:
    """Check what can be checked before any process starts (the number of processes, the model
    kind), then run ``command`` as ``args.processes`` local ranks (:func:`launch`) with the same
    arguments (``args.command_parser``: the subcommand's parser, set by the command)."""
    check_processes(int(args.processes), resolved(args.device))
    check_trainable_across_processes(spec)
    return launch(argv_for_ranks(args.command_parser, args, command), int(args.processes))


def free_port() -> int:
    """A TCP port nobody listens on now, for rank 0's rendezvous store."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(argv: Sequence[str], processes: int) -> int:
    """Run ``python -m governance *argv`` as ``processes`` local ranks; the exit code of the run.

    Rank 0's output goes to this process's stderr as it comes (it prints the summary and the
    refusals every rank shares); another rank's last line is shown only when that rank failed
    and rank 0 did not fail on its own. When a rank fails the others get :data:`GRACE_SECONDS`
    to end, then are stopped. Exit code: rank 0's failure, else another rank's, else 0.
    """
    import signal

    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    # A terminated launcher stops its ranks too (they would otherwise wait in a collective).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        logs = [None] + [stack.enter_context(tempfile.TemporaryFile()) for _ in range(processes - 1)]
        try:
            for rank, log in enumerate(logs):
                env = {
                    **os.environ,
                    "RANK": str(rank),
                    "LOCAL_RANK": str(rank),
                    "WORLD_SIZE": str(processes),
                    "LOCAL_WORLD_SIZE": str(processes),
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port),
                }
                procs.append(
                    subprocess.Popen([sys.executable, "-m", "governance", *argv], env=env, stderr=log)
                )
            codes = _wait_all(procs)
        except BaseException:
            for p in procs:
                _stop(p)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        if codes[0] > 0:
            return codes[0]
        for code, log in zip(codes[1:], logs[1:]):
            if code and log is not None:
                log.seek(0)
                lines = log.read().decode(errors="replace").strip().splitlines()
                if lines:
                    print(lines[-1], file=sys.stderr)
                return code if code > 0 else 1
    return 0 if codes[0] == 0 else 1


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _wait_all(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    failed_at: float | None = None
    while True:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return [int(c) for c in codes]  # type: ignore[arg-type]
        if failed_at is None and any(c for c in codes):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > GRACE_SECONDS:
            for p in procs:
                _stop(p)
        time.sleep(0.05)


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def argv_for_ranks(
    cmd_parser: Any, args: Any, command: str, *, drop: Sequence[str] = ("processes", "command_parser")
) -> list[str]:
    """The command line that reproduces ``args`` for ``command``, minus ``drop``, from argparse's
    own description of the subcommand (``cmd_parser``), so flags added later travel unchanged."""
    import argparse

    out: list[str] = ["--debug"] if getattr(args, "debug", False) else []
    out.append(command)
    positionals: list[str] = []
    for action in cmd_parser._actions:
        if isinstance(action, argparse._HelpAction) or action.dest in drop:
            continue
        value = getattr(args, action.dest, action.default)
        if not action.option_strings:
            positionals.extend(value if isinstance(value, list) else [str(value)])
        elif isinstance(action, argparse._StoreTrueAction):
            if value:
                out.append(action.option_strings[-1])
        elif isinstance(action, argparse._StoreFalseAction):
            if not value:
                out.append(action.option_strings[-1])
        elif value is not None and value != action.default:
            values = value if isinstance(value, list) else [value]
            for v in values:
                out.extend([action.option_strings[-1], str(v)])
    return out + positionals


def checkpoint_on_main(world: World, load: Callable[[], Any]) -> Any:
    """Rank 0 reads the checkpoint (``load`` may raise InputError); every rank gets it."""
    result: Any = None
    error: InputError | None = None
    if world.is_main:
        try:
            result = load()
        except InputError as exc:
            error = exc
    world.agree(error)
    return world.share(result)
