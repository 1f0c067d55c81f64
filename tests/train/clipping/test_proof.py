"""The engine proof (governance/train/clipping/proof.py): the leaks round 1 had, the frozen-part
over-clipping, explicit modes the model does not satisfy, and hooks removed when training raises.

Each leak test measures, through the engine the Trainer picks, every sample's contribution to
the clipped sum against a float64 one-sample-at-a-time reference (tests/train/clipping/_engine.py).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from governance.train.dp import PrivacySettings
from governance.train.trainer import Trainer
from tests.train.clipping._engine import assert_matches_reference, make_engine

CLIP = 0.5


def _data(n: int, d: int, classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    return x, y


class LinearCalledTwice(nn.Module):
    """Not Sequential; ``shared`` runs twice per forward and ``spare`` never (so the number of
    calls equals the number of trainable layers: round 1's count guard passed)."""

    def __init__(self, d: int = 6, h: int = 8, k: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(d, h)
        self.shared = nn.Linear(h, h)
        self.spare = nn.Linear(h, h)
        self.out = nn.Linear(h, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.inp(x))
        h = torch.tanh(self.shared(h))
        h = torch.tanh(self.shared(h))
        return self.out(h)


class SequenceFirst(nn.Module):
    """A Linear fed ``(T, n, d)``: the batch is the second dimension."""

    def __init__(self, t: int = 4, d: int = 5, k: int = 3) -> None:
        super().__init__()
        self.t, self.d = t, d
        self.proj = nn.Linear(d, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.view(x.shape[0], self.t, self.d).transpose(0, 1)  # (T, n, d)
        return self.proj(seq).mean(dim=0)


def test_linear_called_twice_leaked_and_now_each_sample_moves_the_sum_by_at_most_c() -> None:
    """Round 1: auto took the fast path, one sample moved the clipped sum by 1.51×C."""
    torch.manual_seed(0)
    model = LinearCalledTwice().double()
    x, y = _data(6, 6)
    engine = assert_matches_reference(model, x, y, clip=CLIP)
    assert engine.proof.engine == "opacus-hooks"
    assert "called 2 times" in engine.proof.refused["fast"]
    assert "called 2 times" in engine.proof.refused["ghost"]  # ghost keeps one norm per parameter


def test_sequence_first_linear_leaked_and_now_runs_opacus_with_the_batch_second() -> None:
    """Round 1: the fast path reshaped (T, n, d) as batch first: 3.15×C from one sample."""
    torch.manual_seed(0)
    model = SequenceFirst().double()
    x, y = _data(6, 20)
    engine = assert_matches_reference(model, x, y, clip=CLIP)
    assert engine.proof.engine == "opacus-hooks" and not engine.proof.batch_first
    assert "first dimension" in engine.proof.refused["fast"]


def test_sequence_length_equal_to_the_batch_is_not_taken_for_the_batch() -> None:
    """T = 6 rows: the first traced batch alone cannot tell; the second batch size does."""
    from governance.train.clipping.proof import trace

    torch.manual_seed(0)
    model = SequenceFirst(t=8).double()
    x, _ = _data(12, 40)
    seen = trace(model, (x[:8], x[:7]))
    assert seen.batch_dims == {"proj": (1,)} and seen.batch_dim() == 1


@pytest.mark.parametrize("frozen", ["weight", "bias"])
def test_partly_frozen_linear_is_clipped_over_its_trainable_tensor_only(frozen: str) -> None:
    """Round 1 counted a frozen weight in the norm of a trainable bias (60 % over-clipping)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    getattr(model[2], frozen).requires_grad_(False)
    model[0].requires_grad_(False)
    x, y = _data(6, 6)
    engine = assert_matches_reference(model, x, y, clip=CLIP)
    assert engine.proof.engine == "fast"


def test_partly_frozen_layer_norm_and_sequence_linear() -> None:
    torch.manual_seed(0)

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(4)
            self.proj = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.proj(self.norm(x.view(x.shape[0], 5, 4))).mean(dim=1)

    model = Tokens().double()
    model.norm.weight.requires_grad_(False)
    model.proj.weight.requires_grad_(False)
    x, y = _data(6, 20)
    engine = assert_matches_reference(model, x, y, clip=CLIP)
    assert engine.proof.engine == "fast"


def test_explicit_fast_on_prelu_is_refused_with_the_reason() -> None:
    """Round 1 trained the PReLU's weight with no gradient at all, silently."""
    model = nn.Sequential(nn.Linear(4, 6), nn.PReLU(), nn.Linear(6, 2))
    x, y = _data(40, 4, classes=2)
    privacy = PrivacySettings(target_epsilon=5.0, delta=1e-3, noise_multiplier=1.0, grad_sample_mode="fast")
    trainer = Trainer(model=model, train_data=(x.float(), y), privacy=privacy, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match=r"'fast' is not proven.*'1' \(PReLU\)"):
        trainer.fit()
    assert not any(m._forward_hooks for m in model.modules())


def test_explicit_fused_and_ghost_on_a_reused_module_are_refused() -> None:
    from governance.train.clipping.proof import prove

    model = LinearCalledTwice()
    x, _ = _data(10, 6)
    batches = (x[:5].float(), x[:4].float())
    with pytest.raises(ValueError, match=r"'fused' is not proven.*called 2 times"):
        prove(model, nn.CrossEntropyLoss(), batches, requested="fused")
    with pytest.raises(ValueError, match=r"'ghost' is not proven.*called 2 times"):
        prove(model, nn.CrossEntropyLoss(), batches, requested="ghost")
    assert prove(model, nn.CrossEntropyLoss(), batches, requested="hooks").engine == "opacus-hooks"


def test_shared_parameters_and_functional_reuse_are_not_admitted() -> None:
    torch.manual_seed(0)

    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.b.weight = self.a.weight
            self.out = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.tanh(self.b(torch.tanh(self.a(x)))))

    class Functional(nn.Module):
        """Uses ``inp.weight`` a second time outside ``inp``: no hook sees it."""

        def __init__(self) -> None:
            super().__init__()
            self.inp = nn.Linear(4, 4)
            self.out = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.tanh(self.inp(x))
            return self.out(torch.tanh(h @ self.inp.weight.t()))

    x, y = _data(8, 4, classes=2)
    engine = assert_matches_reference(Tied().double(), x, y, clip=CLIP)
    assert engine.proof.engine == "opacus-hooks", engine.proof  # Opacus sums tied per-sample grads
    assert "shared" in engine.proof.refused["fast"]
    # Opacus' ghost clipping measured 1.68×C from one sample here: refused for every engine.
    with pytest.raises(ValueError, match=r"cannot train privately: parameter 'inp.weight'.*outside"):
        make_engine(Functional().double(), x, y, clip=CLIP)


def test_fast_and_fused_are_admitted_on_the_models_they_are_proven_for() -> None:
    from governance.train.clipping.proof import prove

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = _data(6, 6)
    assert assert_matches_reference(mlp, x, y, clip=CLIP).proof.engine == "fused-mlp"
    x, y = _data(6, 6)
    proof = prove(mlp, nn.CrossEntropyLoss(reduction="sum"), (x[:4], x[:3]))
    assert proof.engine == "fast" and proof.checks["each_called_once"] and proof.checks["batch_first"]


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("mode", ["auto", "hooks", "ghost"])
def test_hooks_are_removed_when_training_raises(mode: str) -> None:
    """Round 1 left its hooks (ours or Opacus') on the user's model when a step raised."""

    class Fails(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 6)
            self.b = nn.Linear(6, 2)
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 8:  # a training batch (the proof traces at most 8 rows)
                self.calls += 1
            if self.calls > 1:
                raise Boom("step failed")
            return self.b(torch.tanh(self.a(x)))

    model = Fails()
    x, y = _data(64, 4, classes=2)
    privacy = PrivacySettings(target_epsilon=5.0, delta=1e-3, noise_multiplier=1.0, grad_sample_mode=mode)
    trainer = Trainer(model=model, train_data=(x.float(), y), privacy=privacy, epochs=1, batch_size=16)
    with pytest.raises(Boom):
        trainer.fit()
    _assert_no_engine_left(model)


def _assert_no_engine_left(model: nn.Module) -> None:
    """No hook (ours or Opacus'), no per-sample gradient, no parameter left frozen for the run."""
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks
        assert not module._forward_pre_hooks and not getattr(module, "_full_backward_hooks", None)
        for p in module.parameters():
            assert getattr(p, "grad_sample", None) is None
            assert p.requires_grad


def test_ledger_records_the_engine_and_its_proof() -> None:
    torch.manual_seed(0)
    model = LinearCalledTwice()
    x, y = _data(64, 6)
    privacy = PrivacySettings(target_epsilon=5.0, delta=1e-3, noise_multiplier=1.0)
    ledger = (
        Trainer(model=model, train_data=(x.float(), y), privacy=privacy, epochs=1, batch_size=16).fit().ledger
    )
    assert ledger["privacy"]["engine"] == "opacus-hooks"
    assert ledger["privacy"]["grad_sample_mode"] == "hooks"
    proof = ledger["privacy"]["engine_proof"]
    assert proof["checks"]["each_called_once"] is False and proof["checks"]["traced_batch_sizes"] == [8, 7]
    assert "called 2 times" in proof["refused"]["fast"]
    mlp = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    ledger = (
        Trainer(model=mlp, train_data=(x.float(), y), privacy=privacy, epochs=1, batch_size=16).fit().ledger
    )
    assert ledger["privacy"]["engine"] == "fused-mlp"
    assert ledger["privacy"]["engine_proof"]["checks"]["fused_structure"] == "fused-mlp"


def test_a_sequential_mlp_on_sequences_takes_the_fast_path_not_the_fused_step() -> None:
    """nn.Sequential of Linear/ReLU on (n, T, d): the fused MLP step takes 2-D inputs only."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Unflatten(1, (4, 5)), nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3), nn.Flatten())
    head = nn.Sequential(model, nn.Linear(12, 3)).double()
    x, y = _data(6, 20)
    engine = assert_matches_reference(head, x, y, clip=CLIP)
    assert engine.proof.engine == "fast"
    from governance.train.clipping.proof import prove

    mlp = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3))
    seq = torch.randn(8, 4, 5)
    proof = prove(mlp, nn.CrossEntropyLoss(), (seq, seq[:7]))
    assert proof.engine == "fast" and "not 2-D" in proof.refused["fused"]


@pytest.mark.parametrize("mode", ["auto", "hooks", "ghost"])
def test_hooks_are_removed_when_the_run_is_refused_after_the_engine_is_attached(mode: str) -> None:
    """The engine is attached before the canaries are bound and the budget is planned; a refusal
    there (here: 1000 canaries need 1000 weights in one Linear) must not leave it on the model."""
    from governance.canary_options import CanaryOptions
    from governance.train.canaries import CanaryError

    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    x, y = _data(64, 4, classes=2)
    privacy = PrivacySettings(target_epsilon=5.0, delta=1e-3, noise_multiplier=1.0, grad_sample_mode=mode)
    trainer = Trainer(
        model=model,
        train_data=(x.float(), y),
        privacy=privacy,
        epochs=1,
        batch_size=16,
        canaries=CanaryOptions(count=1000),
    )
    with pytest.raises(CanaryError, match="1000 canaries need as many weights"):
        trainer.fit()
    _assert_no_engine_left(model)


def test_parameters_frozen_for_opacus_are_trainable_again_when_opacus_refuses(monkeypatch) -> None:
    """A module the forward pass never calls is frozen for an Opacus run (Opacus has no
    per-sample gradient for it); when Opacus then refuses the model, the user's model must get
    its trainable parameters back."""
    import opacus

    class WithUnused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
            self.spare = nn.Linear(4, 2)  # never called

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    def refuse(self: object, **kwargs: object) -> None:
        raise ValueError("refused for the test")

    monkeypatch.setattr(opacus.PrivacyEngine, "make_private", refuse)
    model = WithUnused()
    x, y = _data(64, 4, classes=2)
    trainer = Trainer(
        model=model,
        train_data=(x.float(), y),
        privacy=PrivacySettings(target_epsilon=5.0, delta=1e-3, noise_multiplier=1.0),
        epochs=1,
        batch_size=16,
    )
    with pytest.raises(ValueError, match="Opacus cannot make this model private"):
        trainer.fit()
    assert all(p.requires_grad for p in model.parameters())
