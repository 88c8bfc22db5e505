"""Foolbox's fast minimum-norm attack (Pintor et al. 2021), wrapped: an optional dependency."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_choice, check_int
from ..results import AttackResult, attacking, from_points
from .common import _images, _labels

__all__ = ["fmn"]


def fmn(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, norm: str = "2", steps: int = 100) -> AttackResult:
    """Foolbox's fast minimum-norm attack (L2FMNAttack / LInfFMNAttack, foolbox 3.3.4), targeted,
    ``steps`` forward+backward passes (and the forward-only ones of its own checks), in the box
    [0, 1]. Needs foolbox (``pip install foolbox``): an ImportError says so.

    Args: x [N, ...] in [0, 1]; target [N] labels; ``norm`` "2" or "inf"."""
    check_choice("norm", norm, ("2", "inf"))
    check_int("steps", steps)
    try:
        import foolbox as fb
    except ImportError:
        raise ImportError("the FMN attack comes from foolbox: `pip install foolbox==3.3.4`") from None
    x, _, _ = _images(model, x, (0.0, 1.0))
    with attacking(model, x) as passes:
        target = _labels(model, x, {"target": target})["target"]
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
        attack = (fb.attacks.L2FMNAttack if norm == "2" else fb.attacks.LInfFMNAttack)(steps=steps)
        _, clipped, _ = attack(fmodel, x, fb.criteria.TargetedMisclassification(target), epsilons=None)
        return from_points(model, x, clipped, target, passes=passes)
