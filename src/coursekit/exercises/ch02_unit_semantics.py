"""Chapter 2's exercises (``book/02_unit_semantics.md``)."""

from __future__ import annotations

import numpy as np
import torch

from ..units import difference_interval
from .bank import Exercise
from .checking import Mistake


def _samples(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(np.asarray(a, dtype=np.float64)), torch.as_tensor(np.asarray(b, dtype=np.float64))


def _percentiles(differences: torch.Tensor) -> tuple[float, float]:
    low, high = torch.quantile(differences, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return float(low), float(high)


def _without_replacement(a, b, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Each round a permutation of each sample: its mean never changes, so every round gives the
    observed difference and the interval is that one point."""
    a, b = _samples(a, b)
    generator = torch.Generator().manual_seed(seed)
    a_ = torch.stack([a[torch.randperm(len(a), generator=generator)].mean() for _ in range(100)])
    b_ = torch.stack([b[torch.randperm(len(b), generator=generator)].mean() for _ in range(100)])
    return _percentiles(a_ - b_)


def _pooled(a, b, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Both resamples drawn from a and b put together (what a test of "no difference" does)."""
    a, b = _samples(a, b)
    pool = torch.cat([a, b])
    generator = torch.Generator().manual_seed(seed)
    a_ = pool[torch.randint(len(pool), (resamples, len(a)), generator=generator)].mean(1)
    b_ = pool[torch.randint(len(pool), (resamples, len(b)), generator=generator)].mean(1)
    return _percentiles(a_ - b_)


def _only_a(a, b, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Only a resampled; b's mean taken as exact."""
    a, b = _samples(a, b)
    generator = torch.Generator().manual_seed(seed)
    a_ = a[torch.randint(len(a), (resamples, len(a)), generator=generator)].mean(1)
    return _percentiles(a_ - b.mean())


def _interval_cases() -> list[tuple]:
    """Purity-like scores (multiples of 1/8 in [1/8, 1]): units a bit purer than random directions."""
    generator = np.random.default_rng(0)
    cases = []
    for na, nb, pa, pb in ((73, 100, 0.85, 0.80), (100, 100, 0.75, 0.85), (40, 300, 0.9, 0.7)):
        a = np.clip(generator.binomial(8, pa, na), 1, 8) / 8
        b = np.clip(generator.binomial(8, pb, nb), 1, 8) / 8
        cases.append((torch.tensor(a), torch.tensor(b)))
    return cases


EXERCISES = (
    Exercise(
        id="difference_interval",
        chapter="02_unit_semantics",
        title="The 95% interval of a difference of means",
        reference=difference_interval,
        mistakes=(
            Mistake(
                "you resampled without replacement: a reshuffled sample has the same mean, so "
                "every round gives the same difference and the interval shrinks to a point. Draw "
                "len(a) indices with replacement (torch.randint), so that some values repeat and "
                "others are left out.",
                _without_replacement,
            ),
            Mistake(
                "you drew both resamples from a and b put together; that imitates a world in which "
                "the two kinds do not differ, so the interval sits around 0 whatever the data say. "
                "Resample a from a and b from b.",
                _pooled,
            ),
            Mistake(
                "you resampled only a and used b's mean as if it were exact; b is a sample too (the "
                "random directions were drawn at random), so resample it as well: the interval "
                "comes out too narrow otherwise.",
                _only_a,
            ),
        ),
        sample_cases=_interval_cases,
        points=2,
        rtol=0.0,
        atol=0.006,  # a student's own random draws differ from the reference's by about 0.002
        hint="resample a and b separately, with replacement, many times (10,000); take the "
        "difference of the means each time, then its 2.5th and 97.5th percentiles.",
    ),
)
