"""The mixed-integer programme of one image and one target (module docstring of the package).

Variables: ℓ∞: [r, t, z_1, (a, δ, z) per hidden layer]; ℓ2: [s, r, z_1, …] with s ≥ φ(z_1) by
the cuts of ``cuts.Projection``. Each unstable ReLU gets a binary δ and its big-M rows from
``network.layer_bounds``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .cuts import Projection
from .network import ReluNetwork, input_domain

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "build_mip",
    "start_values",
]


@dataclass
class _Mip:
    """min cost·v over lb ≤ v ≤ ub, v_integer in {0, 1}, linear rows (equalities lo = hi, or
    one-sided). Variables: ℓ∞: [r, t, z_1, (a, δ, z) per hidden layer]; ℓ2: [s, r, z_1, …] with
    s ≥ φ(z_1) enforced by ``projection``'s cuts (r has no cost: it only keeps z_1 reachable)."""

    lb: list = field(default_factory=list)
    ub: list = field(default_factory=list)
    integer: list = field(default_factory=list)
    cost: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # (column indices, coefficients, lo, hi)
    r: np.ndarray | None = None
    objective: int = -1  # the index of t (ℓ∞) or s (ℓ2)
    layers: list = field(default_factory=list)  # (z, a, δ) index arrays per hidden layer
    first: np.ndarray | None = None  # z_1: the first affine map's outputs
    scale: float = 1.0  # ℓ2: s = |r|² / scale (the start's |r|², so that s is about 1)
    logits: np.ndarray | None = None
    projection: Projection | None = None

    def add(self, lb: Any, ub: Any, *, integer: bool = False, cost: float = 0.0) -> np.ndarray:
        start = len(self.lb)
        self.lb += list(lb)
        self.ub += list(ub)
        self.integer += [integer] * len(lb)
        self.cost += [cost] * len(lb)
        return np.arange(start, start + len(lb))

    def rows_of(self, coefficients: np.ndarray, columns: np.ndarray, lo: Any, hi: Any) -> None:
        """One row per line of coefficients [k, len(columns)] (zeros dropped), lo ≤ row ≤ hi."""
        for line, row_lo, row_hi in zip(
            coefficients, np.broadcast_to(lo, len(coefficients)), np.broadcast_to(hi, len(coefficients))
        ):
            keep = line != 0
            self.rows.append((columns[keep], line[keep], float(row_lo), float(row_hi)))


def _affine(mip: _Mip, w: np.ndarray, b: np.ndarray, inputs: np.ndarray, low: Any, up: Any) -> np.ndarray:
    """Variables z in [low, up] with z = W·inputs + b; returns their indices."""
    z = mip.add(low, up)
    mip.rows_of(np.hstack([np.eye(len(b)), -w]), np.concatenate([z, inputs]), b, b)
    return z


def _relu(mip: _Mip, z: np.ndarray, low: np.ndarray, up: np.ndarray) -> np.ndarray:
    """a = max(z, 0) for l ≤ z ≤ u: stable units need no binary; the others get δ and the
    big-M rows a ≥ z, a ≤ z − l(1 − δ), a ≤ u δ (a ≥ 0 by its bound). Returns a's indices."""
    inactive, active = up <= 0, low >= 0
    a = mip.add(np.maximum(low, 0), np.maximum(up, 0))
    d = mip.add(np.where(active, 1.0, 0.0), np.where(inactive, 0.0, 1.0), integer=True)
    for j in range(len(z)):
        if inactive[j]:
            continue  # a_j = 0 by its bounds
        if active[j]:
            mip.rows.append((np.array([a[j], z[j]]), np.array([1.0, -1.0]), 0.0, 0.0))
            continue
        mip.rows.append((np.array([a[j], z[j]]), np.array([1.0, -1.0]), 0.0, math.inf))
        mip.rows.append((np.array([a[j], z[j], d[j]]), np.array([1.0, -1.0, -low[j]]), -math.inf, -low[j]))
        mip.rows.append((np.array([a[j], d[j]]), np.array([1.0, -up[j]]), -math.inf, 0.0))
    mip.layers.append((z, a, d))
    return a


def build_mip(
    net: ReluNetwork,
    x: np.ndarray,
    target: int,
    bounds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    norm: str,
    margin: float,
    radius: float | None = None,
) -> _Mip:
    """The MIP of the module docstring for one image x [n] and one target. ``bounds``: from
    ``layer_bounds`` with the same radius (one (l, u) per affine map, the logits last)."""
    lo, hi = input_domain(x, radius, norm)
    mip = _Mip()
    c = net.weights[0] @ x + net.biases[0]
    if norm == "inf":
        mip.r = mip.add(lo, hi)
        mip.objective = int(mip.add([0.0], [radius if radius is not None else 1.0], cost=1.0)[0])
        n, pair = len(x), np.concatenate([mip.r, [mip.objective]])
        mip.rows_of(np.hstack([np.eye(n), -np.ones((n, 1))]), pair, -math.inf, 0.0)  # r_i ≤ t
        mip.rows_of(np.hstack([-np.eye(n), -np.ones((n, 1))]), pair, -math.inf, 0.0)  # −r_i ≤ t
        z = _affine(mip, net.weights[0], c, mip.r, *bounds[0])
    else:  # r stays (so that z_1 is always reachable), but s ≥ φ(z_1) replaces |r|²
        mip.scale = radius**2 if radius is not None else 1.0
        mip.objective = int(mip.add([0.0], [1.0 if radius is not None else math.inf], cost=1.0)[0])
        mip.r = mip.add(lo, hi)
        z = _affine(mip, net.weights[0], c, mip.r, *bounds[0])
        mip.projection = Projection(net.weights[0], c, lo, hi, mip.scale)
    mip.first = z
    for k in range(1, len(net.weights)):
        a = _relu(mip, z, *bounds[k - 1])
        z = _affine(mip, net.weights[k], net.biases[k], a, *bounds[k])
    mip.logits = z
    others = [j for j in range(len(z)) if j != target]
    lines = np.zeros((len(others), len(z)))
    lines[np.arange(len(others)), others], lines[:, target] = 1.0, -1.0
    mip.rows_of(lines, z, -math.inf, -margin)  # z_j − z_t ≤ −margin
    return mip


def start_values(mip: _Mip, net: ReluNetwork, x: np.ndarray, r: np.ndarray, norm: str) -> np.ndarray:
    """A full assignment of the MIP's variables for the point x + r (an attack's example)."""
    values = np.zeros(len(mip.lb))
    lb, ub = np.array(mip.lb), np.array(mip.ub)
    if mip.r is not None:
        values[mip.r] = r
    values[mip.objective] = np.abs(r).max() if norm == "inf" else np.dot(r, r) / mip.scale
    z = net.weights[0] @ (x + r) + net.biases[0]
    values[mip.first] = z
    after = [layer[0] for layer in mip.layers[1:]] + [mip.logits]
    for k, ((_, a, d), z_next) in enumerate(zip(mip.layers, after)):
        values[a] = np.maximum(z, 0.0)
        values[d] = np.where(lb[d] == ub[d], lb[d], (z > 0).astype(float))
        z = net.weights[k + 1] @ values[a] + net.biases[k + 1]
        values[z_next] = z
    return values
