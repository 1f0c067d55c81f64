"""The fast samplers draw exactly what the accountant assumes and gather what a DataLoader would."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import stats
from torch.utils.data import DataLoader

from governance.train.sampling import (
    PoissonBatchSampler,
    ShuffleBatchSampler,
    TensorRows,
    iterate_batches,
    uniform_subset,
    uniform_subsets,
)

#: Reject only on strong evidence: with fixed seeds these tests are deterministic, and a correct
#: sampler would fail one of them with probability 1e-3 for an unlucky seed.
ALPHA = 1e-3


def _draws(n: int, q: float, steps: int, seed: int = 0) -> list[torch.Tensor]:
    sampler = PoissonBatchSampler(
        num_samples=n, sample_rate=q, steps=steps, generator=torch.Generator().manual_seed(seed)
    )
    return list(sampler)


@pytest.mark.parametrize(("n", "k"), [(10, 0), (10, 3), (10, 7), (10, 10), (50_000, 256)])
def test_uniform_subset_has_k_distinct_sorted_rows(n: int, k: int) -> None:
    out = uniform_subset(n, k, torch.Generator().manual_seed(1))
    assert out.numel() == k and out.unique().numel() == k
    assert torch.equal(out, out.sort().values)
    assert k == 0 or (int(out.min()) >= 0 and int(out.max()) < n)


def test_uniform_subset_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        uniform_subset(5, 6)


def test_subset_distribution_is_independent_bernoulli() -> None:
    """The strongest check: over N = 4 rows every one of the 16 subsets has probability
    q^k (1-q)^(N-k), exactly as with independent inclusion (both subset paths are exercised:
    k ≤ N/2 by rejection, k > N/2 by permutation)."""
    n, q, steps = 4, 0.4, 40_000
    counts = dict.fromkeys(
        itertools.chain.from_iterable(itertools.combinations(range(n), k) for k in range(n + 1)), 0
    )
    for batch in _draws(n, q, steps, seed=7):
        counts[tuple(batch.tolist())] += 1
    observed = np.array(list(counts.values()), dtype=float)
    expected = np.array([steps * q ** len(s) * (1 - q) ** (n - len(s)) for s in counts])
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_consecutive_batches_are_independent() -> None:
    """Batches drawn together in one chunk: the pair (batch t, batch t+1) has the product law."""
    n, q, steps = 3, 0.5, 40_000
    subsets = list(itertools.chain.from_iterable(itertools.combinations(range(n), k) for k in range(n + 1)))
    index = {s: i for i, s in enumerate(subsets)}
    draws = [index[tuple(b.tolist())] for b in _draws(n, q, steps, seed=5)]
    pairs = np.zeros((len(subsets), len(subsets)))
    for a, b in zip(draws[::2], draws[1::2]):
        pairs[a, b] += 1
    p = np.array([q ** len(s) * (1 - q) ** (n - len(s)) for s in subsets])
    expected = pairs.sum() * np.outer(p, p)
    assert stats.chisquare(pairs.ravel(), expected.ravel()).pvalue > ALPHA


def test_uniform_subsets_sizes_order_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = torch.tensor([3, 0, 6, 10, 2, 9])
    out = uniform_subsets(10, sizes, torch.Generator().manual_seed(4))
    assert [len(b) for b in out] == sizes.tolist()
    for b in out:
        assert b.unique().numel() == b.numel() and torch.equal(b, b.sort().values)
    with pytest.raises(ValueError):
        uniform_subsets(5, torch.tensor([6]))
    # Chunks where no step draws with replacement: all by permutation, or all empty.
    whole, three = uniform_subsets(4, torch.tensor([4, 3]))
    assert whole.tolist() == [0, 1, 2, 3] and three.numel() == 3
    assert [b.numel() for b in uniform_subsets(4, torch.tensor([0, 0]))] == [0, 0]
    full = PoissonBatchSampler(
        num_samples=32, sample_rate=1.0, steps=3, generator=torch.Generator().manual_seed(1)
    )
    assert [b.tolist() for b in full] == [list(range(32))] * 3
    # Chunks of a few steps give the same number of batches and the same law as one chunk.
    monkeypatch.setattr("governance.train.sampling._DRAWS_PER_CHUNK", 64)
    batches = _draws(1_000, 0.05, 23, seed=9)
    assert len(batches) == 23 and all(b.numel() == b.unique().numel() for b in batches)


def test_inclusion_probabilities_are_all_q() -> None:
    n, q, steps = 200, 0.05, 4_000
    hits = np.zeros(n)
    for batch in _draws(n, q, steps, seed=3):
        hits[batch.numpy()] += 1
    # Under independent inclusion each row's count is Binomial(steps, q), independent over rows.
    z2 = ((hits - steps * q) ** 2 / (steps * q * (1 - q))).sum()
    assert stats.chi2.sf(z2, df=n) > ALPHA


def test_batch_size_is_binomial() -> None:
    n, q, steps = 5_000, 256 / 5_000, 5_000
    sizes = np.array([len(b) for b in _draws(n, q, steps, seed=11)])
    dist = stats.binom(n, q)
    # Twenty bins of about equal probability: (-inf, e0], (e0, e1], ..., (e_last, inf).
    edges = np.unique(dist.ppf(np.linspace(0.05, 0.95, 19)))
    observed = np.bincount(np.searchsorted(edges, sizes, side="left"), minlength=len(edges) + 1)
    expected = steps * np.diff(np.concatenate([[0.0], dist.cdf(edges), [1.0]]))
    assert observed.sum() == steps and expected.min() > 5
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_poisson_sampler_is_seeded_and_sized() -> None:
    a = [b.tolist() for b in _draws(1_000, 0.01, 5, seed=2)]
    b = [b.tolist() for b in _draws(1_000, 0.01, 5, seed=2)]
    assert a == b and len(a) == 5
    lists = PoissonBatchSampler(num_samples=10, sample_rate=0.5, steps=3, as_list=True)
    assert len(lists) == 3 and all(isinstance(x, list) for x in lists)
    with pytest.raises(ValueError):
        PoissonBatchSampler(num_samples=10, sample_rate=0.0, steps=3)


def test_shuffle_sampler_cuts_one_permutation_per_epoch() -> None:
    x, y = torch.arange(23.0).unsqueeze(1), torch.arange(23)
    loader = DataLoader(
        TensorRows(x, y), batch_sampler=ShuffleBatchSampler(23, 5, torch.Generator().manual_seed(4))
    )
    assert len(loader) == 5
    expected = torch.randperm(23, generator=torch.Generator().manual_seed(4)).split(5)
    got = list(iterate_batches(loader))
    assert [len(b[1]) for b in got] == [5, 5, 5, 5, 3]
    for (xb, yb), idx in zip(got, expected):
        assert torch.equal(yb, idx) and torch.equal(xb, x[idx])
    assert sorted(torch.cat([b[1] for b in iterate_batches(loader)]).tolist()) == list(range(23))


def test_iterate_batches_gathers_rows_and_empty_batches() -> None:
    x, y = torch.randn(8, 3), torch.arange(8)
    rows = TensorRows(x, y)
    xb, yb = rows.gather(torch.tensor([], dtype=torch.long))
    assert xb.shape == (0, 3) and yb.dtype == torch.long
    loader = DataLoader(rows, batch_sampler=[torch.tensor([1, 5]), torch.tensor([7])])
    got = list(iterate_batches(loader))
    assert torch.equal(got[0][0], x[[1, 5]]) and torch.equal(got[1][1], y[[7]])
    assert len(list(iterate_batches([(x, y)]))) == 1  # anything else is iterated as is


def test_trainer_poisson_batches_through_batch_memory_manager() -> None:
    """Opacus' BatchMemoryManager splits our Poisson batches; the ledger's q is 1/steps per epoch."""
    from torch import nn

    from governance.train.dp import PrivacySettings
    from governance.train.trainer import Trainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    privacy = PrivacySettings(target_epsilon=50.0, delta=1e-3, noise_multiplier=1.0, grad_sample_mode="hooks")
    trainer = Trainer(
        model=model, train_data=(x, y), privacy=privacy, epochs=1, batch_size=100, max_physical_batch_size=32
    )
    ledger = trainer.fit().ledger
    assert ledger["steps"] == 3 and ledger["privacy"]["sample_rate"] == pytest.approx(1 / 3)
    assert ledger["privacy"]["poisson_sampling"] and ledger["train_loss"] is None
