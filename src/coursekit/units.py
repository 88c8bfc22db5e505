"""Unit semantics (§3): are single units more meaningful than random directions of φ(x)?

The paper inspects x' = argmax_{x ∈ I} ⟨φ(x), v⟩ for natural basis directions v = e_i (one
unit) and for random directions v, on a held-out set I (the MNIST test set), and finds the top
images "semantically related" in both cases. It shows this by eye. Here it is also measured:

* ``label_purity`` — the share of the majority label among the top-k images (1 = all one digit);
* ``feature_similarity`` — the mean pairwise cosine similarity of the top-k images in *another*
  trained model's feature space (a representation the direction was not chosen in).

``compare_bases`` scores many natural and many random directions, adds two controls that
bracket the scale — class-mean directions (clearly meaningful) and random sets of k images
(clearly meaningless) — and tests natural vs random with a bootstrap confidence interval of the
difference in means (``difference_interval``, the one test chapter 2's learner meets) and a
Mann–Whitney U test (its reproduction notes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ._checks import check_int, eval_mode, model_device

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pandas as pd


__all__ = [
    "activations",
    "BasisComparison",
    "compare_bases",
    "difference_interval",
    "feature_similarity",
    "label_purity",
    "natural_directions",
    "random_directions",
    "top_images",
]


@torch.no_grad()
def activations(
    model: nn.Module, x: torch.Tensor, batch_size: int = 2000, layer: nn.Module | None = None
) -> torch.Tensor:
    """φ(x) [N, n] for images x [N, ...], computed in batches on the model's device.

    By default φ is ``model.features`` (the last hidden layer). ``layer`` picks another one:
    any submodule of the model, whose output (flattened) is recorded during the forward pass.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    check_int("batch_size", batch_size)
    device = model_device(model)
    outputs: list[torch.Tensor] = []
    hook = None
    if layer is not None:
        if not any(m is layer for m in model.modules()):
            raise ValueError(f"layer {layer!r} is not a submodule of the model")
        hook = layer.register_forward_hook(lambda mod, inp, out: outputs.append(out.flatten(1)))
    try:
        chunks = []
        with eval_mode(model):
            for i in range(0, len(x), batch_size):
                xb = x[i : i + batch_size].to(device)
                if layer is None:
                    chunks.append(model.features(xb))  # type: ignore[operator]
                else:
                    model(xb)
                    chunks.append(outputs.pop())
        return torch.cat(chunks)
    finally:
        if hook is not None:
            hook.remove()


def random_directions(n: int, count: int, seed: int = 0) -> torch.Tensor:
    """``count`` random unit-norm directions in R^n [count, n]: Gaussian vectors, normalised.
    The same seed gives the same directions.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    check_int("n", n)
    check_int("count", count)
    v = torch.randn(count, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (v / v.norm(dim=1, keepdim=True)).float()


def natural_directions(n: int, units: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """The natural basis directions e_i [len(units), n] (all n units by default).

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    check_int("n", n)
    units = torch.arange(n) if units is None else torch.as_tensor(units)
    if units.numel() and (units.min() < 0 or units.max() >= n):
        raise ValueError(f"units must lie in [0, {n - 1}], got {units.tolist()}")
    return torch.eye(n)[units]


def top_images(phi: torch.Tensor, direction: torch.Tensor, k: int = 8) -> torch.Tensor:
    """Indices of the k images with the largest ⟨φ(x), v⟩, largest first.

    phi [N, n]; direction [n] (returns [k]) or several directions [D, n] (returns [D, k]).

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    check_int("k", k)
    if phi.dim() != 2:
        raise ValueError(f"phi must be [N, n], got shape {tuple(phi.shape)}")
    if k > phi.shape[0]:
        raise ValueError(f"k must be at most the number of images {phi.shape[0]}, got {k}")
    single = direction.dim() == 1
    directions = direction[None] if single else direction
    if directions.dim() != 2 or directions.shape[1] != phi.shape[1]:
        raise ValueError(f"direction must be [n] or [D, n] with n = {phi.shape[1]}, got {tuple(direction.shape)}")
    scores = directions.to(phi) @ phi.T  # [D, N]
    index = scores.topk(k, dim=1).indices
    return index[0] if single else index


def label_purity(labels: torch.Tensor) -> torch.Tensor:
    """The share of the most common label in each row of ``labels`` [D, k] (or [k]): [D] in [1/k, 1]."""
    rows = labels[None] if labels.dim() == 1 else labels
    counts = torch.nn.functional.one_hot(rows.long(), int(rows.max()) + 1).sum(1)
    purity = counts.max(1).values.float() / rows.shape[1]
    return purity[0] if labels.dim() == 1 else purity


def feature_similarity(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The mean pairwise cosine similarity of the images ``index`` [D, k] (or [k]) in the
    feature space ``features`` [N, f]: [D] (or a scalar)."""
    rows = index[None] if index.dim() == 1 else index
    k = rows.shape[1]
    if k < 2:
        raise ValueError(f"index needs at least 2 images per row, got {k}")
    f = torch.nn.functional.normalize(features.float(), dim=1)[rows.to(features.device)]  # [D, k, f]
    gram = f @ f.transpose(1, 2)
    off_diagonal = gram.sum((1, 2)) - gram.diagonal(dim1=1, dim2=2).sum(1)
    similarity = (off_diagonal / (k * (k - 1))).cpu()
    return similarity[0] if index.dim() == 1 else similarity


@dataclass
class BasisComparison:
    """Coherence scores of top-k sets, per kind of direction, and the test natural vs random.

    ``scores[kind][measure]`` is a numpy array with one score per direction; kinds are
    "natural", "random", "class mean" (control: clearly meaningful), "random images"
    (control: clearly meaningless); measures are "purity" and "similarity".
    ``tests[measure]`` holds the Mann–Whitney U p-value (two-sided), the difference of means
    natural − random and its bootstrap 95% confidence interval.
    """

    scores: dict
    tests: dict
    k: int
    dead_units: int

    def summary(self) -> pd.DataFrame:
        """A pandas DataFrame: mean ± sd of each measure per kind of direction."""
        import pandas as pd

        rows = []
        for kind, measures in self.scores.items():
            row = {"directions": kind, "count": len(next(iter(measures.values())))}
            for measure, values in measures.items():
                row[f"{measure} mean"] = float(np.mean(values))
                row[f"{measure} sd"] = float(np.std(values))
            rows.append(row)
        return pd.DataFrame(rows).set_index("directions")

    def test_table(self) -> pd.DataFrame:
        """A pandas DataFrame of the natural-vs-random tests, one row per measure."""
        import pandas as pd

        return pd.DataFrame(self.tests).T


def compare_bases(
    phi: torch.Tensor,
    labels: torch.Tensor,
    reference_features: torch.Tensor,
    *,
    k: int = 8,
    random_count: int = 200,
    seed: int = 0,
    bootstrap_resamples: int = 10_000,
) -> BasisComparison:
    """Score natural vs random directions of φ on the held-out set, with controls and tests.

    Args:
        phi: activations φ(x) [N, n] of the model under study on the held-out images.
        labels: their labels [N].
        reference_features: another model's features [N, f] of the same images (for similarity).
        k: images per direction (a row of the paper's Figures 1–2).
        random_count: how many random directions (and random image sets) to score.
        seed: for the random directions, the random image sets and the bootstrap.
        bootstrap_resamples: rounds of the bootstrap interval (``difference_interval``).

    Units whose activation is constant on the held-out set ("dead" ReLU units) have no
    top-k images and are left out of the natural directions; their number is reported.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    check_int("k", k, minimum=2)
    check_int("random_count", random_count, minimum=2)
    if len(phi) != len(labels) or len(phi) != len(reference_features):
        raise ValueError(
            f"phi, labels and reference_features must have the same length, got "
            f"{len(phi)}, {len(labels)}, {len(reference_features)}"
        )
    phi = phi.float().cpu()
    labels = labels.cpu()
    alive = phi.std(0) > 0
    natural = natural_directions(phi.shape[1])[alive]
    random = random_directions(phi.shape[1], random_count, seed)
    centred = phi - phi.mean(0)
    class_means = torch.stack([centred[labels == c].mean(0) for c in labels.unique()])
    class_means = class_means / class_means.norm(dim=1, keepdim=True)
    generator = torch.Generator().manual_seed(seed + 1)
    random_sets = torch.stack([torch.randperm(len(phi), generator=generator)[:k] for _ in range(random_count)])
    index = {
        "natural": top_images(phi, natural, k),
        "random": top_images(phi, random, k),
        "class mean": top_images(phi, class_means, k),
        "random images": random_sets,
    }
    scores = {
        kind: {
            "purity": label_purity(labels[ix]).numpy(),
            "similarity": feature_similarity(reference_features, ix).numpy(),
        }
        for kind, ix in index.items()
    }
    tests = {
        measure: _natural_vs_random(scores["natural"][measure], scores["random"][measure], bootstrap_resamples, seed)
        for measure in ("purity", "similarity")
    }
    return BasisComparison(scores=scores, tests=tests, k=k, dead_units=int((~alive).sum()))


def difference_interval(
    a: torch.Tensor | np.ndarray | Sequence[float],
    b: torch.Tensor | np.ndarray | Sequence[float],
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """The percentile bootstrap interval of mean(a) − mean(b), two independent samples.

    Each of ``resamples`` rounds draws len(a) values of ``a`` and len(b) values of ``b`` with
    replacement (each sample on its own) and takes the difference of their means; the interval
    is the middle ``level`` (0.95: the 2.5th to the 97.5th percentile) of those differences.
    ``a`` [na], ``b`` [nb]: 1-D, at least 2 values each. Deterministic for a ``seed``.
    Returns (low, high) as floats.
    """
    check_int("resamples", resamples, minimum=2)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    samples = [torch.as_tensor(np.asarray(s, dtype=np.float64)) for s in (a, b)]
    for name, sample in zip("ab", samples):
        if sample.dim() != 1 or len(sample) < 2:
            raise ValueError(f"{name} must be 1-D with at least 2 values, got shape {tuple(sample.shape)}")
    generator = torch.Generator().manual_seed(seed)
    a_, b_ = (s[torch.randint(len(s), (resamples, len(s)), generator=generator)].mean(1) for s in samples)
    differences = a_ - b_  # [resamples]
    tail = (1 - level) / 2
    low, high = torch.quantile(differences, torch.tensor([tail, 1 - tail], dtype=torch.float64))
    return float(low), float(high)


def _natural_vs_random(a: np.ndarray, b: np.ndarray, resamples: int, seed: int) -> dict:
    """Natural (a) against random (b) directions' scores: the means, their difference with its
    percentile bootstrap interval (``difference_interval``, ``resamples``, ``seed``), and the
    two-sided Mann-Whitney U test."""
    from scipy import stats

    u = stats.mannwhitneyu(a, b, alternative="two-sided")
    low, high = difference_interval(a, b, resamples, seed)
    return {
        "natural mean": float(a.mean()),
        "random mean": float(b.mean()),
        "difference": float(a.mean() - b.mean()),
        "ci low": low,
        "ci high": high,
        "U": float(u.statistic),
        "p value": float(u.pvalue),
    }
