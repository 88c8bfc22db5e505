"""What every attack returns, made in one place: ``AttackResult``, the distances, and
``from_points``, which turns the points an attack found into its result.

Every attack of the course (the paper's L-BFGS in ``attack``, the later ones in
``modern_attacks``) ends the same way: its points x_adv for the images x go through
``from_points``, which runs the model once on them and decides there, for every attack alike,

* ``success``: the model predicts the target (targeted) or does not predict y (untargeted);
* ``margin``: by how many logits the goal holds at that point (negative where it fails);
* the distances: the paper's distortion sqrt(Σ r_i² / n) (n pixels per image) and |r|₂, both
  inf where the attack failed, so that a mean over failures cannot pass for a small distortion;
* the passes: how many rows of each image went through the model, counted by hooks on the
  model (``PassCounter``, the way adv-lib counts them) rather than by the attack's own
  bookkeeping, so that they are what the model saw by construction.

The distances in other norms (|r|∞ for the ℓ∞ attacks) are ``lp_distance`` and ``distances``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import torch
from torch import nn

from ._checks import check_choice, eval_mode, logit_margin

__all__ = [
    "DISTANCE_NORMS",
    "AttackResult",
    "PassCounter",
    "attacking",
    "distances",
    "distortion",
    "from_points",
    "goal_reached",
    "lp_distance",
]

DISTANCE_NORMS = ("2", "inf")
_UNKNOWN = torch.empty(0)  # AttackResult's margin when none is given


@dataclass
class AttackResult:
    """What an attack returns, one entry per image (all tensors on the model's device).

    x_adv       [N, ...] the adversarial images, inside the box (x itself where a minimum-norm
                attack failed; a fixed-budget attack keeps its last point there)
    target      [N] int64 the label each image was pushed towards (−1: an untargeted attack)
    success     [N] bool: the model predicts ``target`` on ``x_adv`` (untargeted: it does not
                predict y), decided once by ``from_points``
    c           [N] the weight of the attack's penalty whose solution gave x_adv (the L-BFGS
                attack: the weight on |r|², inf for the trivial case f(x) = target; C&W: the
                weight on the loss); nan where no weight succeeded or the attack has none
    distortion  [N] the paper's sqrt(Σ r_i² / n) (n = pixels per image); inf where it failed
    l2          [N] |r|₂ (inf where it failed)
    evaluations [N] int64: the image's rows that went through a backward pass of the model
                (counted per backward pass: a Jacobian of J logits by J backward passes counts J)
    forward_only [N] int64: the image's rows that went through the model without a backward
                pass (checks, bisections, trial points, the final check). Both are counted by
                hooks on the model (``PassCounter``): what the model computed, also for an image
                that waits in a batch after it has converged.
    margin      [N] logits by which the goal holds at the attack's point: the target's logit
                minus the largest other (untargeted: the largest other minus y's); ≤ 0 where it
                failed (how far the point fell short, also where x_adv is x itself). Last, and
                optional: a result made without it (by code written before it) has NaN there.
    """

    x_adv: torch.Tensor
    target: torch.Tensor
    success: torch.Tensor
    c: torch.Tensor
    distortion: torch.Tensor
    l2: torch.Tensor
    evaluations: torch.Tensor
    forward_only: torch.Tensor
    margin: torch.Tensor = _UNKNOWN

    def __post_init__(self) -> None:
        if self.margin is _UNKNOWN:
            self.margin = torch.full_like(self.distortion, math.nan)

    def __len__(self) -> int:
        return len(self.target)

    def to(self, device: torch.device | str) -> AttackResult:
        """A copy with every tensor on ``device``."""
        return AttackResult(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def __getitem__(self, index: Any) -> AttackResult:
        """The results for a subset of the images (any tensor index)."""
        return AttackResult(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[AttackResult]) -> AttackResult:
        """Join results of consecutive batches."""
        return AttackResult(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(AttackResult)})


def distortion(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """The paper's distortion sqrt(Σ (x'_i − x_i)² / n) per image, [N] (n = pixels per image).

    Used in chapters 3a (book/03a_lbfgs_attack.md) and 4 (book/04_transfer.md).
    """
    r = (x_adv - x).flatten(1)
    return r.pow(2).mean(1).sqrt()


def lp_distance(r: torch.Tensor, norm: str) -> torch.Tensor:
    """|r| per image [N] in float64 for perturbations r [N, ...]: ``norm`` "2" (|r|₂) or "inf" (|r|∞)."""
    flat = r.flatten(1).double()
    return flat.norm(dim=1) if norm == "2" else flat.abs().amax(1)


def distances(result: AttackResult, x: torch.Tensor, norm: str) -> torch.Tensor:
    """|x_adv − x| per image in ``norm`` ("2": |r|₂, "inf": |r|∞), float64 on the CPU; inf
    where the attack failed."""
    check_choice("norm", norm, DISTANCE_NORMS)
    d = lp_distance(result.x_adv.cpu() - x.cpu(), norm)
    return torch.where(result.success.cpu(), d, torch.full_like(d, math.inf))


def goal_reached(logits: torch.Tensor, target: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor:
    """[N] bool from logits [N, K]: the attack's goal holds (argmax = target; untargeted, with
    target None: argmax ≠ y)."""
    predicted = logits.argmax(1)
    if target is not None:
        return predicted.eq(target)
    return predicted.ne(_untargeted(y))


def _goal_margin(logits: torch.Tensor, target: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor:
    """[N]: the target's logit minus the largest other (untargeted: the largest other minus y's)."""
    if target is not None:
        return logit_margin(logits, target)
    return -logit_margin(logits, _untargeted(y))


def _untargeted(y: torch.Tensor | None) -> torch.Tensor:
    """The labels y of an untargeted attack; a ValueError when neither a target nor y is given."""
    if y is None:
        raise ValueError("give the attack's goal: a target (targeted) or y (untargeted), got neither")
    return y


class PassCounter:
    """Counts, per image, the rows that go through ``model`` while it is active, by a forward
    hook on the model (the adv-lib way: whatever the attack believes it spent).

    ``with PassCounter(model, n, device) as passes:`` around an attack of n images; then
    ``passes.evaluations`` [n] (rows of each backward pass through the model's output, so one
    forward pass followed by J backward passes counts J) and ``passes.forward_only`` [n] (rows of
    forward passes without a graph for a backward one), int64 on ``device``.

    Which images a batch holds: by default its rows are the images 0, 1, … in order (the whole
    batch, or its first image for a look at x[:1]); an attack that runs the model on some images
    only says which, ``with passes.rows(index): model(x[index])``. A batch of another length
    than the images it is said to hold is an error (RuntimeError), never a silent miscount.
    """

    def __init__(self, model: nn.Module, n: int, device: torch.device | str) -> None:
        self.model = model
        self.evaluations = torch.zeros(n, dtype=torch.long, device=device)
        self.forward_only = torch.zeros(n, dtype=torch.long, device=device)
        self._all = torch.arange(n, device=device)
        self._rows: torch.Tensor | None = None
        self._hook: Any = None

    def __enter__(self) -> PassCounter:
        self._hook = self.model.register_forward_hook(self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        self._hook.remove()

    @contextmanager
    def rows(self, index: torch.Tensor) -> Iterator[None]:
        """Within the block, each batch through the model holds the images ``index`` [k] (int64)."""
        previous, self._rows = self._rows, index
        try:
            yield
        finally:
            self._rows = previous

    def _count(self, module: nn.Module, args: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        ids = self._rows if self._rows is not None else self._all[: len(output)]
        if len(ids) != len(output):
            raise RuntimeError(
                f"the model computed {len(output)} rows for {len(ids)} images "
                f"(PassCounter.rows names the images of a batch; {len(self._all)} in all)"
            )
        if output.requires_grad:
            output.register_hook(partial(self._backward, ids))
        else:
            self.forward_only.index_add_(0, ids, torch.ones_like(ids))

    def _backward(self, ids: torch.Tensor, grad: torch.Tensor) -> None:
        self.evaluations.index_add_(0, ids, torch.ones_like(ids))


def from_points(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    target: torch.Tensor | None,
    *,
    passes: PassCounter,
    y: torch.Tensor | None = None,
    c: torch.Tensor | None = None,
    keep_failed: bool = False,
) -> AttackResult:
    """The AttackResult of the points x_adv [N, ...] an attack found for the images x [N, ...].

    One forward pass of ``model`` on x_adv (without gradients; in the caller's mode: the attacks
    call it in eval mode, inside ``passes``, which counts it) decides ``success`` and ``margin``
    for the goal: ``target`` [N] (targeted) or, with target None, not ``y`` [N] (untargeted;
    the result's target is then −1). Where it failed, x_adv is replaced by x unless
    ``keep_failed`` (a fixed-budget attack returns its last point: adversarial training needs
    it), and the distances are inf. ``c`` [N]: the weight each image's point came from (default
    nan); the passes are ``passes``' counts, read after this last pass.
    """
    with torch.no_grad():
        logits = model(x_adv)
    success = goal_reached(logits, target, y)
    n = len(x)
    if not keep_failed:
        x_adv = torch.where(success.view(-1, *[1] * (x.dim() - 1)), x_adv, x)
    inf = torch.full((n,), math.inf, device=x.device, dtype=x.dtype)
    return AttackResult(
        x_adv=x_adv.detach(),
        target=target if target is not None else torch.full((n,), -1, device=x.device, dtype=torch.long),
        success=success,
        margin=_goal_margin(logits, target, y),
        c=torch.full_like(inf, math.nan) if c is None else c,
        distortion=torch.where(success, distortion(x, x_adv), inf),
        l2=torch.where(success, (x_adv - x).flatten(1).norm(dim=1), inf),
        evaluations=passes.evaluations.clone(),
        forward_only=passes.forward_only.clone(),
    )


@contextmanager
def attacking(model: nn.Module, x: torch.Tensor) -> Iterator[PassCounter]:
    """How every attack runs: ``model`` in eval mode for the block (its mode restored after,
    also when the block raises) and a ``PassCounter`` for the images x [N, ...], yielded."""
    with eval_mode(model), PassCounter(model, len(x), x.device) as passes:
        yield passes
