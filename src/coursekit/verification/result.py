"""The result of an exact verification, and what a point must pass to be reported.

A candidate point is an answer only inside the box with the target ahead by the margin in the
float64 copy of the model and in the model's own dtype (``_PointCheck``); ``VerificationResult``
holds, per image, the closest such point, the solver's proven lower bound and the status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import eval_mode, to_model
from .network import ReluNetwork

__all__ = [
    "MARGIN_TOL",
    "VerificationResult",
]


MARGIN_TOL = 1e-5  # a returned point must reach the target by margin − MARGIN_TOL (solver feasibility)


@dataclass
class VerificationResult:
    """Exact minimum distortions, one entry per (image, target); all tensors on the CPU.

    x_adv       [N, ...] float64: the closest point found that reaches the target, checked in
                the model in float64 and in its own dtype (x itself where there is none)
    target      [N] int64
    distance    [N] |r| of x_adv in the chosen norm (|r|₂ or |r|∞); inf where no point
    lower_bound [N] the solver's proven lower bound on the minimum (same unit; inf where it
                proved that no point of the box reaches the target with the margin)
    margin      [N] z_target − max_{j≠target} z_j at x_adv (float64; ≥ margin − MARGIN_TOL)
    optimal     [N] bool: distance − lower_bound ≤ gap_tol · distance (the gap is closed)
    status      per row: "optimal", "infeasible" (proven: the target cannot win in the box),
                "gap open" (a point, but the gap is not closed: the time limit, or the
                solver's tolerances), "no point" (none found in time), "below precision"
                (points reach the target by the margin in float64 but the model itself, in
                its own dtype, does not classify them as the target: raise the margin) or
                "solver error" (SCIP aborted on numerical trouble: the best checked point, no
                bound)
    seconds     [N] the solver's wall time; nodes [N] branch-and-bound nodes
    unstable    [N] hidden units that needed a binary variable
    start_used  [N] bool: the given start was feasible and became the first incumbent
    """

    x_adv: torch.Tensor
    target: torch.Tensor
    distance: torch.Tensor
    lower_bound: torch.Tensor
    margin: torch.Tensor
    optimal: torch.Tensor
    status: list
    seconds: torch.Tensor
    nodes: torch.Tensor
    unstable: torch.Tensor
    start_used: torch.Tensor
    norm: str = "2"
    gap_tol: float = 1e-4

    @property
    def distortion(self) -> torch.Tensor:
        """The paper's distortion |r|₂ / sqrt(n) (n pixels) of ``distance`` (ℓ2 only)."""
        if self.norm != "2":
            raise ValueError("distortion is the ℓ2 measure; this result is for norm='inf'")
        return self.distance / math.sqrt(self.x_adv[0].numel())

    def __len__(self) -> int:
        return len(self.target)


def _norm(r: np.ndarray, norm: str) -> float:
    return float(np.linalg.norm(r)) if norm == "2" else float(np.abs(r).max(initial=0.0))


def _margins(model64: nn.Module, v: np.ndarray, target: int, shape: torch.Size) -> float:
    """z_target − max_{j≠target} z_j of the float64 copy of the model at the point v [n]."""
    with torch.no_grad():
        z = model64(torch.from_numpy(v).view(1, *shape))[0]
    return float(z[target] - torch.cat([z[:target], z[target + 1 :]]).max())


def _rounding_allowance(net: ReluNetwork, v: np.ndarray, roundoff: float) -> float:
    """How far rounding in a dtype of unit roundoff ``roundoff`` (2⁻²⁴ for float32) can
    typically move a difference of two logits at the point v [n]: each layer's error is its
    input's error through |W| plus √(fan-in)·roundoff times the size of its terms |W||a| + |b|
    (the usual statistical estimate, Higham §2.8; the worst case, fan-in·roundoff, is 30 times
    larger on MNIST, and 1,000 times the error measured there), twice for a difference."""
    active, error = v, np.zeros_like(v)
    for k, (w, b) in enumerate(zip(net.weights, net.biases)):
        size = np.abs(w) @ np.abs(active) + np.abs(b)
        error = np.abs(w) @ error + math.sqrt(w.shape[1] + 1) * roundoff * size
        z = w @ active + b
        active = np.maximum(z, 0.0) if k < len(net.weights) - 1 else z
    return 2 * float(error.max())


@dataclass(frozen=True)
class _PointCheck:
    """When a candidate point is an answer: inside the box, and the target winning (1) by
    margin − MARGIN_TOL in the float64 copy of the model (the solver's tolerance), (2) by more
    than the model's own dtype can round away (``_rounding_allowance``), and (3) in the model
    itself, in its own dtype on its device. Within rounding of the decision boundary a float32
    model can decide otherwise than its float64 copy, and otherwise in a batch than alone
    (issue 31: with margin 0, 3 of 8 "optimal" points were not in the target class)."""

    model64: nn.Module
    model: nn.Module
    net: ReluNetwork
    shape: torch.Size
    margin: float
    roundoff: float  # the unit roundoff of the model's dtype

    def in_float64(self, v: np.ndarray, target: int) -> bool:
        """(1): inside the box, the target ahead by margin − MARGIN_TOL in float64."""
        return bool(v.min() >= 0 and v.max() <= 1) and _margins(self.model64, v, target, self.shape) >= (
            self.margin - MARGIN_TOL
        )

    def in_own_precision(self, v: np.ndarray, target: int) -> bool:
        """(2) and (3), for a point that passed (1)."""
        if _margins(self.model64, v, target, self.shape) <= _rounding_allowance(self.net, v, self.roundoff):
            return False
        with torch.no_grad(), eval_mode(self.model):
            z = self.model(to_model(self.model, torch.from_numpy(v).view(1, *self.shape)))[0]
        return bool(z[target] > torch.cat([z[:target], z[target + 1 :]]).max())


def _checked(
    check: _PointCheck, xi: np.ndarray, candidates: list[np.ndarray], target: int, norm: str
) -> tuple[np.ndarray, float, bool]:
    """The closest candidate point that ``check`` accepts: (v, distance, False), or
    (x, inf, below) if none does, ``below`` True when some candidate passed in float64 but not
    in the model's own precision."""
    in_float64 = [v for v in candidates if check.in_float64(v, target)]
    checked = [(v, _norm(v - xi, norm)) for v in in_float64 if check.in_own_precision(v, target)]
    if not checked:
        return xi, math.inf, bool(in_float64)
    v, distance = min(checked, key=lambda c: c[1])
    return v, distance, False


def _status(distance: float, lower: float, gap_tol: float, below_precision: bool = False) -> str:
    if math.isinf(lower):
        return "infeasible"
    if not math.isfinite(distance):
        return "below precision" if below_precision else "no point"
    return "optimal" if distance - lower <= gap_tol * distance else "gap open"
