"""DP noise nobody can replay: OS entropy by default, the seed only with reproducible_noise.

Round 1 drew the noise from ``manual_seed(seed + 1)`` with the seed printed in every output:
two runs of one spec gave the same weights, so anyone holding the report could regenerate the
noise. These tests pin every DP path (fast, fused MLP, fused CNN, Opacus hooks and ghost, the
Hugging Face path) to fresh noise per run, and to bit-identical weights only on request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from governance.models.architectures import build_architecture
from governance.train.dp import PrivacySettings
from governance.train.noise import noise_generator
from governance.train.trainer import EpochRecord, Trainer


def _tabular(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64")


def _images(n: int = 96) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.uniform(size=(n, 64)).astype("float32"), rng.integers(0, 3, size=n)


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))


def _cnn() -> nn.Module:
    return build_architecture("cnn", 64, 3, {"input_shape": [1, 8, 8], "channels": [4, 8]})


# (path name, model builder, data, grad_sample_mode asked, mode the ledger must record)
PATHS: list[tuple[str, Any, Any, str, str]] = [
    ("fast", _mlp, _tabular, "fast", "fast"),
    ("fused-mlp", _mlp, _tabular, "fused", "fused"),
    ("fused-cnn", _cnn, _images, "fused", "fused"),
    ("opacus-hooks", _mlp, _tabular, "hooks", "hooks"),
    ("opacus-ghost", _mlp, _tabular, "ghost", "ghost"),
]


def _fit(build: Any, data: Any, mode: str, *, reproducible: bool, **kw: Any) -> Any:
    x, y = data()
    torch.manual_seed(0)
    privacy = PrivacySettings(
        target_epsilon=50.0,
        delta=1e-3,
        noise_multiplier=1.0,
        grad_sample_mode=mode,
        reproducible_noise=reproducible,
    )
    trainer = Trainer(
        model=build(), train_data=(x, y), privacy=privacy, epochs=1, batch_size=24, lr=0.3, seed=3, **kw
    )
    if reproducible:
        with pytest.warns(UserWarning, match="reproducible_noise"):
            return trainer.fit()
    return trainer.fit()


def _weights(result: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in result.model.parameters()]


@pytest.mark.parametrize(("path", "build", "data", "mode", "recorded"), PATHS, ids=[p[0] for p in PATHS])
def test_same_spec_and_seed_give_fresh_noise_unless_reproducible(
    path: str, build: Any, data: Any, mode: str, recorded: str
) -> None:
    first = _fit(build, data, mode, reproducible=False)
    second = _fit(build, data, mode, reproducible=False)
    assert first.ledger["privacy"]["grad_sample_mode"] == recorded
    assert first.ledger["privacy"]["noise_source"] == "os-entropy"
    # Same seed, same batches (the sampler is seeded): only the noise differs, and it does.
    assert first.ledger["steps"] == second.ledger["steps"]
    assert any(not torch.equal(p, q) for p, q in zip(_weights(first), _weights(second)))

    seeded = [_fit(build, data, mode, reproducible=True) for _ in range(2)]
    assert seeded[0].ledger["privacy"]["noise_source"] == "seeded"
    for p, q in zip(_weights(seeded[0]), _weights(seeded[1])):
        assert torch.equal(p, q)  # bit-identical


def test_cpu_noise_state_is_not_the_32_bit_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch's CPU generator keeps 32 bits of manual_seed: the whole Mersenne Twister state
    comes from OS entropy instead, so even a known seed value does not fix the stream."""
    import governance.train.noise as noise

    monkeypatch.setattr(noise.secrets, "randbits", lambda bits: 12345)
    a = noise_generator("cpu", seed=0, reproducible=False)
    b = noise_generator("cpu", seed=0, reproducible=False)
    plain = torch.Generator().manual_seed(12345)
    draws = [torch.empty(256).normal_(generator=g) for g in (a, b, plain)]
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    # Still a standard normal.
    pooled = torch.empty(20_000).normal_(generator=a)
    assert abs(float(pooled.mean())) < 0.05 and abs(float(pooled.std()) - 1) < 0.05


@pytest.mark.parametrize("reproducible", [False, True])
def test_checkpoint_holds_the_noise_state_only_when_seeded(tmp_path: Path, reproducible: bool) -> None:
    from governance.train.checkpoint import load_checkpoint

    def stop(record: EpochRecord) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _fit(_mlp, _tabular, "fused", reproducible=reproducible, checkpoint_dir=tmp_path, callbacks=[stop])
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None
    assert ("noise" in checkpoint.rng) is reproducible


SENTINEL_SEED = 0x5EED_C0DE_0BAD_F00D
SENTINEL_WORDS = bytes(range(7, 7 + 64))


def test_noise_seed_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plant a known OS-entropy seed and state, run `governance audit` (it trains), and look for
    them in every file written: the outputs, the ledger, and the checkpoint folder."""
    import governance.train.noise as noise
    from governance.cli import main
    from tests.data.helpers import spec_dict, write_spec, write_split

    monkeypatch.setattr(noise.secrets, "randbits", lambda bits: SENTINEL_SEED)
    monkeypatch.setattr(
        noise.secrets, "token_bytes", lambda n: (SENTINEL_WORDS * (n // len(SENTINEL_WORDS) + 1))[:n]
    )
    write_split(tmp_path)
    spec = spec_dict(
        train__privacy={"target_epsilon": 5.0, "delta": 1e-3},
        audits={"data_quality": {}, "performance": {}, "privacy": {}},
    )
    out = tmp_path / "out"
    assert main(["audit", str(write_spec(tmp_path, spec)), "--out", str(out)]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix not in {".csv", ".yaml"}]
    assert any(p.name == "training.json" for p in written)
    needles = [
        str(SENTINEL_SEED).encode(),
        f"{SENTINEL_SEED:x}".encode(),
        SENTINEL_SEED.to_bytes(8, "little"),
        (SENTINEL_SEED & 0xFFFF_FFFF).to_bytes(4, "little"),
        str(SENTINEL_SEED & 0xFFFF_FFFF).encode(),
        SENTINEL_WORDS[:16],
    ]
    for path in written:
        blob = path.read_bytes()
        for needle in needles:
            assert needle not in blob, f"{path.relative_to(tmp_path)} holds the noise seed"
    ledger = json.loads(next(p for p in written if p.name == "training.json").read_text())
    assert ledger["privacy"]["noise_source"] == "os-entropy"


def test_hf_path_draws_fresh_noise_unless_reproducible(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from governance.cli import main
    from tests.text.helpers import text_spec, write_spec, write_text_data
    from tests.text.tiny_bert import write_tiny_bert

    tiny = write_tiny_bert(tmp_path / "bert")
    train, evaluation = write_text_data(tmp_path)

    def run(name: str, reproducible: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        spec = text_spec(tiny, train, evaluation)
        spec["train"]["epochs"] = 1
        spec["train"]["privacy"]["reproducible_noise"] = reproducible
        out = tmp_path / name
        assert main(["train", str(write_spec(tmp_path, spec, f"{name}.yaml")), "--out", str(out)]) == 0
        ledger = json.loads((out / "training.json").read_text())
        return load_file(str(out / "model.safetensors")), ledger

    a, ledger = run("a", False)
    b, _ = run("b", False)
    assert ledger["privacy"]["noise_source"] == "os-entropy"
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.warns(UserWarning, match="reproducible_noise"):
        c, seeded = run("c", True)
        d, _ = run("d", True)
    assert seeded["privacy"]["noise_source"] == "seeded"
    assert all(torch.equal(c[k], d[k]) for k in c)


@pytest.mark.gpu
def test_cuda_noise_is_fresh_per_run_and_seeded_on_request() -> None:
    fresh = [noise_generator("cuda", seed=0, reproducible=False) for _ in range(2)]
    seeded = [noise_generator("cuda", seed=0, reproducible=True) for _ in range(2)]
    draws = [torch.empty(1024, device="cuda").normal_(generator=g) for g in (*fresh, *seeded)]
    assert not torch.equal(draws[0], draws[1]) and torch.equal(draws[2], draws[3])
