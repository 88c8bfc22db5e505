"""Closed forms for a linear classifier (chapter 3, part 2): what the box-free geometry gives.

For logits z = W v + b, "l beats j at x + r" is one linear inequality in r,
(w_l − w_j)·r ≥ z_j − z_l, a half-space. The closest point of a half-space is a projection, so
the smallest r that makes l beat the single class j has length (z_j − z_l)₊ / |w_l − w_j|.
Beating every j, and staying inside the box, is a smaller set, so it is at least as far:
``half_space_bound`` is a lower bound on |D(x, l) − x| that needs no solver, the starting point
of the exact QP of ``coursekit.exact`` (which it never exceeds).
"""

from __future__ import annotations

import torch

__all__ = ["half_space_bound"]


def half_space_bound(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, target: int) -> float:
    """max over j ≠ target of (z_j − z_target)₊ / |w_target − w_j|, with z = weight·x + bias.

    ``weight`` [K, n], ``bias`` [K], ``x`` one image (any shape with n values), ``target`` a
    class in [0, K). A lower bound on |D(x, target) − x|₂ (the ℓ2 norm, not the per-pixel RMS);
    0 when x is already labelled ``target``. Computed in float64.
    """
    if weight.dim() != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(f"weight must be [K, n] and bias [K], got {tuple(weight.shape)} and {tuple(bias.shape)}")
    if x.numel() != weight.shape[1]:
        raise ValueError(f"x has {x.numel()} values, the weights expect {weight.shape[1]}")
    if isinstance(target, bool) or not 0 <= int(target) < len(weight):
        raise ValueError(f"target must be a class in [0, {len(weight) - 1}], got {target!r}")
    W, b = weight.double(), bias.double()
    z = W @ x.flatten().double() + b
    others = torch.arange(len(W)) != int(target)
    gaps = (z[others] - z[int(target)]).clamp(min=0)
    distances = gaps / (W[int(target)] - W[others]).norm(dim=1)  # gap > 0 over |0|: inf, unreachable
    return float(torch.where(gaps == 0, 0.0, distances).max())
