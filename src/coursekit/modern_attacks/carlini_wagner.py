"""The Carlini–Wagner L2 attack (Carlini and Wagner 2017): a minimum-norm attack."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import (
    check_int,
    check_positive,
    logit_margin,
)
from ..results import AttackResult, attacking, from_points
from .common import _col, _images, _labels, _one_of, _reached

__all__ = ["carlini_wagner_l2"]


def _cw_margin(logits: torch.Tensor, labels: torch.Tensor, targeted: bool) -> torch.Tensor:
    """C&W's f: max_{j≠t} Z_j − Z_t (targeted) or Z_y − max_{j≠y} Z_j, per image [N].
    Positive while the goal is not reached."""
    margin = logit_margin(logits, labels)
    return -margin if targeted else margin


def carlini_wagner_l2(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | None = None,
    *,
    y: torch.Tensor | None = None,
    search_steps: int = 9,
    steps: int = 1000,
    c_init: float = 1e-3,
    lr: float = 1e-2,
    confidence: float = 0.0,
    abort_early: bool = True,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> AttackResult:
    """The Carlini–Wagner L2 attack (2017), batched.

    x' = m + h·tanh(w) (m, h the box's centre and half-width) is inside the box for every w.
    For each weight c, Adam (learning rate ``lr``, ``steps`` steps, all images at once) from
    w = atanh(x) minimises |x' − x|² + c·max(f(x'), −κ), f as in ``_cw_margin``; with
    ``abort_early`` it stops when the batch's loss has not fallen by 0.01% over a tenth of the
    steps. The search over c starts at ``c_init``, ×10 until an image succeeds, then bisects
    (c weighs the *loss* here, the opposite of the paper's c). Every iterate that reaches the
    goal and is closer than the best so far is kept; an image that is already at the goal is
    returned as it is (distortion 0, c = inf, as in ``lbfgs_attack``).

    Args: x [N, ...] in ``bounds``; exactly one of ``target`` [N] (targeted) or ``y`` [N]
    (untargeted). Returns an AttackResult; ``c`` is the weight whose run found x_adv.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    _one_of(target, y)
    _check_cw_options(search_steps, steps, c_init, lr, confidence)
    x, lower, upper = _images(model, x, bounds)
    with attacking(model, x) as passes:
        labels = _labels(model, x, {"target": target, "y": y})
        goal = labels["target"] if target is not None else labels["y"]
        middle, half = (upper + lower) / 2, (upper - lower) / 2
        w0 = torch.atanh((x - middle) / half * 0.999999)
        run = _CWRun(x, w0, middle, half, goal, labels, target is not None, steps, lr, confidence, abort_early)
        best = _cw_search(model, run, c_init, search_steps)
        return from_points(model, x, best.x, labels["target"], y=labels["y"], passes=passes, c=best.c)


def _cw_search(model: nn.Module, run: _CWRun, c_init: float, search_steps: int) -> _CWBest:
    """``carlini_wagner_l2``'s search over c: ``search_steps`` weights from ``c_init``, ×10
    until an image reaches the goal, then bisected; an image already at the goal is its own
    answer (distortion 0, c = inf). Returns the closest points at the goal found."""
    x = run.x
    c = torch.full((len(x),), float(c_init), device=x.device, dtype=x.dtype)
    c_low, c_high = torch.zeros_like(c), torch.full_like(c, math.inf)
    with torch.no_grad():  # an image already at the goal is its own answer
        trivial = _reached(model(x), run.labels["target"], run.labels["y"])
    best = _CWBest(
        x.clone(), torch.where(trivial, 0.0, math.inf).to(x.dtype), torch.where(trivial, math.inf, math.nan).to(x.dtype)
    )
    for _ in range(search_steps):
        found = _cw_adam(model, run, c, best)
        c_high = torch.where(found, c, c_high)
        c_low = torch.where(found, c_low, c)
        c = torch.where(torch.isinf(c_high), c * 10, (c_low + c_high) / 2)
    return best


def _check_cw_options(search_steps: int, steps: int, c_init: float, lr: float, confidence: float) -> None:
    """The options of ``carlini_wagner_l2``, each error naming the option."""
    check_int("search_steps", search_steps)
    check_int("steps", steps)
    check_positive("c_init", c_init)
    check_positive("lr", lr)
    check_positive("confidence", confidence, allow_zero=True)


@dataclass
class _CWBest:
    """The closest example at the goal found so far per image: x [N, ...], d2 = |x − x0|² [N]
    and the weight c [N] whose run found it."""

    x: torch.Tensor
    d2: torch.Tensor
    c: torch.Tensor


@dataclass
class _CWRun:
    """What one weight's Adam run of ``carlini_wagner_l2`` needs: the images x, the start w0 in
    tanh space, the box's ``middle`` and ``half`` width, the ``goal`` labels (``labels``: the
    target and y as given), whether the attack is ``targeted``, and the options."""

    x: torch.Tensor
    w0: torch.Tensor
    middle: float
    half: float
    goal: torch.Tensor
    labels: dict
    targeted: bool
    steps: int
    lr: float
    confidence: float
    abort_early: bool


def _cw_adam(model: nn.Module, run: _CWRun, c: torch.Tensor, best: _CWBest) -> torch.Tensor:
    """Adam on w for the weights c [N] (``carlini_wagner_l2``): every iterate at the goal and
    closer than ``best`` replaces it (in place). Returns found [N]: the images that reached
    the goal."""
    x = run.x
    w = run.w0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=run.lr)
    found = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    previous = math.inf
    for step in range(run.steps):
        x_new = run.middle + run.half * torch.tanh(w)
        logits = model(x_new)
        d2 = (x_new - x).flatten(1).pow(2).sum(1)
        margin = _cw_margin(logits, run.goal, run.targeted)
        loss = (d2 + c * (margin + run.confidence).clamp_min(0)).sum()
        (w.grad,) = torch.autograd.grad(loss, w)  # not loss.backward(): the model's .grad stay
        optimizer.step()
        if run.abort_early and step % math.ceil(run.steps / 10) == 0:
            if not loss.item() <= 0.9999 * previous:
                break
            previous = loss.item()
        if run.confidence:
            hit = margin.detach() + run.confidence < 0
        else:
            hit = _reached(logits.detach(), run.labels["target"], run.labels["y"])
        found |= hit
        better = hit & (d2.detach() < best.d2)
        best.x = torch.where(_col(better, x), x_new.detach(), best.x)
        best.d2 = torch.where(better, d2.detach(), best.d2)
        best.c = torch.where(better, c, best.c)
    return found
