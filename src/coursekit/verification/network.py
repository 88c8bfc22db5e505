"""The network as the MIP reads it, and bounds on its pre-activations.

``relu_network`` reads a ReLU MLP (a plain chain of ``nn.Linear``, ``nn.ReLU`` and
``nn.Flatten``, ``chain.chain_layers``) as float64 matrices; ``layer_bounds`` bounds every
affine map's outputs over the box (and, given an attack's distance, the ball around x), the
big-M constants of the MIP; ``activation_patterns`` and ``pattern_qp`` give the exact closest
point inside one activation pattern, where the network is affine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .._checks import eval_mode, to_model
from ..chain import chain_layers

__all__ = [
    "activation_patterns",
    "input_domain",
    "layer_bounds",
    "pattern_qp",
    "relu_network",
    "ReluNetwork",
]


_PASS_THROUGH = (nn.Flatten, nn.Identity, nn.Dropout)  # identity maps in eval mode (Flatten: on the input)


@dataclass(frozen=True)
class ReluNetwork:
    """A ReLU MLP as float64 arrays: z_1 = W_1 v + b_1, a_k = max(z_k, 0), …, logits = W_L a + b_L.

    weights[k] [out, in] and biases[k] [out]; a ReLU follows every layer but the last.
    """

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]

    @property
    def inputs(self) -> int:
        return self.weights[0].shape[1]

    def logits(self, v: np.ndarray) -> np.ndarray:
        """Logits [N, K] for inputs v [N, n] (flattened images), in float64."""
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            v = v @ w.T + b
            if k < len(self.weights) - 1:
                v = np.maximum(v, 0.0)
        return v


def relu_network(model: nn.Module) -> ReluNetwork:
    """The float64 ``ReluNetwork`` of ``model``, a chain of ``nn.Linear``, ``nn.ReLU`` and
    ``nn.Flatten`` (``nn.Identity`` and ``nn.Dropout`` read as the identity: eval mode).
    Consecutive linear layers are multiplied out. A ValueError names any other layer (a
    sigmoid, a convolution, max-pooling, …): the MIP encodes ReLU networks exactly, nothing else.
    """
    weights: list[np.ndarray] = []
    biases: list[np.ndarray] = []
    relu_after: list[bool] = []
    try:
        layers = chain_layers(model)
    except ValueError as error:
        raise ValueError(f"cannot encode the model as a ReLU network (a chain of layers): {error}") from None
    for link in layers:
        name, layer = link.name, link.module
        if isinstance(layer, nn.Linear):
            w = layer.weight.detach().to("cpu", torch.float64).numpy()
            b = np.zeros(len(w)) if layer.bias is None else layer.bias.detach().to("cpu", torch.float64).numpy()
            if weights and not relu_after[-1]:  # two affine maps in a row: one affine map
                w, b = w @ weights[-1], w @ biases[-1] + b
                weights.pop(), biases.pop(), relu_after.pop()
            weights.append(w)
            biases.append(b)
            relu_after.append(False)
        elif isinstance(layer, nn.ReLU):
            if weights:  # before any Linear the input is in [0, 1]: ReLU is the identity there
                relu_after[-1] = True
        elif not isinstance(layer, _PASS_THROUGH):
            raise ValueError(
                f"cannot encode layer {name or 'model'!r} ({type(layer).__name__}) exactly: "
                f"only nn.Linear, nn.ReLU and nn.Flatten (a ReLU MLP)"
            )
    if not weights:
        raise ValueError("model has no nn.Linear layer")
    if relu_after[-1]:
        raise ValueError("the last layer must be an nn.Linear giving the logits, not a ReLU")
    return ReluNetwork(tuple(weights), tuple(biases))


def _check_network(model: nn.Module, net: ReluNetwork, x: torch.Tensor) -> None:
    """Refuse when our reading of the layers does not compute the model's logits on x (e.g. a
    custom forward that reorders its modules)."""
    with torch.no_grad(), eval_mode(model):
        theirs = model(to_model(model, x)).double().cpu().numpy()
    ours = net.logits(x.flatten(1).double().cpu().numpy())
    if theirs.shape != ours.shape or not np.allclose(theirs, ours, rtol=1e-4, atol=1e-4 * (1 + np.abs(ours).max())):
        raise ValueError(
            "the model's output differs from the chain of its layers (a custom forward?): refusing to verify it"
        )


def activation_patterns(net: ReluNetwork, v: np.ndarray) -> list[np.ndarray]:
    """The on/off pattern (ẑ > 0) of every hidden layer at the input v [n]."""
    patterns = []
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = w @ v + b
        patterns.append(z > 0)
        v = np.maximum(z, 0.0)
    return patterns


def pattern_qp(
    net: ReluNetwork, x: np.ndarray, target: int, patterns: list, lo: np.ndarray, hi: np.ndarray, margin: float
) -> np.ndarray | None:
    """The exact closest point with a fixed activation pattern: min |r|² over lo ≤ r ≤ hi where
    unit j of hidden layer k is on (ẑ ≥ 0) iff patterns[k][j], and the target wins by ``margin``;
    with the pattern fixed the network is affine in r, so this is a convex QP
    (``coursekit.exact.box_qp``, float64; solved with the margin raised by 1e-9 so that
    rounding cannot take the point below it). Returns r [n], or None if the QP is infeasible
    or not solved."""
    from ..exact import box_qp

    a_map, c_map = net.weights[0], net.weights[0] @ x + net.biases[0]
    rows, rhs = [], []
    for k, on in enumerate(patterns):
        sign = np.where(on, -1.0, 1.0)[:, None]  # on: −ẑ ≤ 0; off: ẑ ≤ 0
        rows.append(sign * a_map)
        rhs.append(-sign[:, 0] * c_map)
        a_map, c_map = net.weights[k + 1] @ (on[:, None] * a_map), net.weights[k + 1] @ (on * c_map) + net.biases[k + 1]
    others = [j for j in range(len(c_map)) if j != target]
    rows.append(a_map[others] - a_map[target])
    rhs.append(c_map[target] - c_map[others] - margin - 1e-9)
    A, h = (torch.from_numpy(np.concatenate(v))[None] for v in (rows, rhs))
    solved = box_qp(A, h, torch.from_numpy(lo)[None], torch.from_numpy(hi)[None], iterations=200)
    r, violation = solved.r, solved.violation  # a candidate only: the caller checks it in the network
    if violation.item() > 1e-9 * (1 + h.abs().max().item()):
        return None
    return r[0].numpy()


def input_domain(x: np.ndarray, radius: float | None, norm: str) -> tuple[np.ndarray, np.ndarray]:
    """The box of r: x + r in [0, 1] and, given a radius (the distance of a known adversarial
    point), |r_i| ≤ radius (for ℓ∞ that is the whole ball; for ℓ2 its bounding box)."""
    lo, hi = -x, 1.0 - x
    if radius is not None:
        lo, hi = np.maximum(lo, -radius), np.minimum(hi, radius)
    return lo, hi


def layer_bounds(
    net: ReluNetwork, x: np.ndarray, *, radius: float | None = None, norm: str = "2", tighten: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Bounds (l, u) on the outputs of every affine map (the hidden pre-activations ẑ_k, then
    the logits) for inputs x + r, r in ``input_domain`` and (ℓ2, given ``radius``) |r|₂ ≤ radius.
    x [n] float64 in [0, 1].

    The first map: interval arithmetic over the box, and for ℓ2 with a radius the exact
    maximum over ball ∩ box (``_ball_box_max``). Later maps: interval arithmetic on the
    previous layer's [max(l, 0), max(u, 0)], then, with ``tighten``, one LP per bound of each
    hidden unit that is still unstable (``_lp_tighten``). Every bound is valid (never a guess).
    """
    lo, hi = input_domain(x, radius, norm)
    w, b = net.weights[0], net.biases[0] + net.weights[0] @ x
    low, up = _interval(w, b, lo, hi)
    if radius is not None and norm == "2":
        up = np.minimum(up, b + _ball_box_max(w, lo, hi, radius))
        low = np.maximum(low, b - _ball_box_max(-w, lo, hi, radius))
    bounds = [(low, up)]
    for k in range(1, len(net.weights)):
        prev_l, prev_u = bounds[-1]
        bounds.append(_interval(net.weights[k], net.biases[k], np.maximum(prev_l, 0), np.maximum(prev_u, 0)))
        if tighten and k < len(net.weights) - 1:
            bounds[-1] = _lp_tighten(net, x, lo, hi, bounds)
    return bounds


def _ball_box_max(w: np.ndarray, lo: np.ndarray, hi: np.ndarray, radius: float) -> np.ndarray:
    """Per row of w [h, n]: an upper bound on max w·r over lo ≤ r ≤ hi, |r|₂ ≤ radius (tight to
    ~1e-9 relative). Weak duality: for every μ ≥ 0 the maximum is at most
    g(μ) = μ R² + Σ_i max over lo_i ≤ r_i ≤ hi_i of (w_i r_i − μ r_i²), the inner maximiser being
    clip(w_i / 2μ, lo_i, hi_i); g is convex in μ, minimised by bisection on log μ."""

    def g(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = np.clip(w / (2 * mu[:, None]), lo, hi)
        return mu * radius**2 + (w * r - mu[:, None] * r**2).sum(1), (r**2).sum(1)

    box = np.maximum(w * lo, w * hi).sum(1)  # μ = 0: the box alone
    top = np.maximum(np.linalg.norm(w, axis=1) / (2 * max(radius, 1e-300)), 1e-300)
    low, high = np.log(top) - 40.0, np.log(top) + 1.0  # |r(μ)| ≤ R at μ = top
    best = np.minimum(box, g(np.exp(high))[0])
    for _ in range(80):
        mid = (low + high) / 2
        value, norm2 = g(np.exp(mid))
        best = np.minimum(best, value)
        outside = norm2 > radius**2
        low, high = np.where(outside, mid, low), np.where(outside, high, mid)
    return best


def _interval(w: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of w v + b over the box lo ≤ v ≤ hi (exact for one affine map)."""
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    return wp @ lo + wn @ hi + b, wp @ hi + wn @ lo + b


def _relaxation(
    net: ReluNetwork, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[Any, np.ndarray, Any, np.ndarray | None, np.ndarray, np.ndarray, int]:
    """The LP (triangle) relaxation of the layers below the last entry of ``bounds``: sparse
    rows A_eq, b_eq, A_ub, b_ub and variable bounds over [r, z_1, a_1, …, z_k] (z_k last)."""
    from scipy import sparse

    n = len(x)
    blocks_eq, rhs_eq, blocks_ub, rhs_ub = [], [], [], []
    var_lo, var_hi = [lo], [hi]
    offset, inp, inp_size = n, 0, n
    for k, (low, up) in enumerate(bounds):
        h = len(low)
        w = net.weights[k]
        b = net.biases[k] + (w @ x if k == 0 else 0)
        z = offset
        blocks_eq.append((sparse.hstack([-sparse.csr_matrix(w), sparse.identity(h)]), inp, inp_size + h))
        rhs_eq.append(b)  # z − W in = b (the input and z are adjacent blocks)
        var_lo.append(low)
        var_hi.append(up)
        offset += h
        if k == len(bounds) - 1:
            break
        a = offset
        var_lo.append(np.maximum(low, 0))
        var_hi.append(np.maximum(up, 0))
        offset += h
        # a ≥ z (always valid), a ≤ u (z − l) / (u − l) where unstable, a = z where active
        slope = np.where(low >= 0, 1.0, np.where(up <= 0, 0.0, up / np.where(up > low, up - low, 1.0)))
        blocks_ub.append((sparse.hstack([sparse.identity(h), -sparse.identity(h)]), z, 2 * h))
        rhs_ub.append(np.zeros(h))
        blocks_ub.append((sparse.hstack([-sparse.diags(slope), sparse.identity(h)]), z, 2 * h))
        rhs_ub.append(np.where((low < 0) & (up > 0), -slope * low, 0.0))
        inp, inp_size = a, h
    total = offset

    def assemble(blocks: list[tuple[Any, int, int]]) -> Any:
        rows = [
            sparse.hstack(
                [sparse.csr_matrix((m.shape[0], start)), m, sparse.csr_matrix((m.shape[0], total - start - width))]
            )
            for m, start, width in blocks
        ]
        return sparse.vstack(rows).tocsr() if rows else None

    return (
        assemble(blocks_eq),
        np.concatenate(rhs_eq),
        assemble(blocks_ub),
        np.concatenate(rhs_ub) if rhs_ub else None,
        np.concatenate(var_lo),
        np.concatenate(var_hi),
        total,
    )


def _lp_tighten(
    net: ReluNetwork, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Tighter (l, u) for the last layer of ``bounds``: min and max of each unstable unit's
    pre-activation over the LP relaxation of the layers below (scipy's HiGHS)."""
    from scipy.optimize import linprog

    a_eq, b_eq, a_ub, b_ub, var_lo, var_hi, total = _relaxation(net, x, lo, hi, bounds)
    low, up = (v.copy() for v in bounds[-1])
    h = len(low)
    for j in np.flatnonzero((low < 0) & (up > 0)):
        for sign in (1.0, -1.0):
            cost = np.zeros(total)
            cost[total - h + j] = sign  # minimise ±z_j
            out = linprog(
                cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=np.stack([var_lo, var_hi], 1), method="highs"
            )
            if out.status != 0:
                continue  # keep the interval bound (always valid)
            if sign > 0:
                low[j] = max(low[j], out.fun - 1e-6 * (1 + abs(out.fun)))
            else:
                up[j] = min(up[j], -out.fun + 1e-6 * (1 + abs(out.fun)))
    return low, up
