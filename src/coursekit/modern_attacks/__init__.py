"""What came after the paper: the attacks of the next decade, a certificate and PGD training.

Same conventions as ``coursekit.attack.lbfgs_attack``: batched tensors on the model's device,
images x [N, ...] inside explicit ``bounds`` (default [0, 1]), integer labels [N], the model
used in eval mode and left as it was, results as ``AttackResult``. Distortion is the paper's
sqrt(Σ r_i² / n) (n pixels per image); ``l2`` is |r|₂.

Fixed-budget attacks (the question: *is there an error within ε?*)

``fgsm(model, x, y, eps)``
    Goodfellow et al. 2014: one step x + ε·sign(∇ₓ loss_f(x, y)), clipped to the box.
``pgd(model, x, y, eps, norm="inf" | "2", steps, step_size, target=None)``
    Madry et al. 2017: projected gradient ascent on the loss inside the ε-ball (L∞ or L2),
    from a random start; with ``target`` it descends the loss of the target label instead.

Minimum-norm attacks (the question of Tables 1–4: *how far is the nearest error?*)

``carlini_wagner_l2(model, x, target)``
    Carlini and Wagner 2017: Adam on |r|² + c·max(max_{j≠t} Z_j − Z_t, −κ) in tanh
    coordinates (so the box needs no projection), with a binary search over c.
``ddn(model, x, target)``
    Rony et al. 2019, "decoupled direction and norm": a gradient step for the direction,
    then the perturbation is rescaled to a norm ε that shrinks by (1 − γ) while the point is
    adversarial and grows by (1 + γ) while it is not.
``pgd_bisection(model, x, target)``
    the ℓ∞ minimum-norm attack made from PGD: a bisection over ε per image.
``fmn(model, x, target, norm="2" | "inf")``
    foolbox's fast minimum-norm attack (Pintor et al. 2021), when foolbox is installed.

C&W and DDN also run untargeted (``y=`` the true labels instead of ``target``). In the results,
``target`` is −1 for an untargeted attack; ``success`` means "classified as the target"
(targeted) or "not classified as y" (untargeted). A fixed-budget attack returns the perturbed
image also where it failed (adversarial training needs it); a minimum-norm attack returns x
itself there. Either way ``distortion`` and ``l2`` are inf where the attack failed, so that a
mean over failures cannot pass for a small distortion (``results.from_points`` decides all
of it, for every attack).

``certified_radius`` turns chapter 5's product of layer bounds into a guarantee, and
``madry_training`` trains a zoo model on PGD examples (cached like every trained model).

The package: one file per attack (``fgsm``, ``pgd``, ``carlini_wagner``, ``ddn``,
``pgd_bisection``, ``fmn``) and one entry per attack in ``registry.ATTACKS`` (its name, norm,
kind and the options of each budget: what ``optimality`` and chapter 7 run by name); besides
them ``certified`` (the certified radius), ``training`` (PGD training), ``summary`` (timing and
the tables) and ``common`` (the attacks' shared set-up). Every public name is re-exported here.
"""

from __future__ import annotations

from ..config import profile_views
from .carlini_wagner import carlini_wagner_l2
from .certified import certified_radius
from .common import NORMS
from .ddn import ddn
from .fgsm import fgsm
from .fmn import fmn
from .pgd import pgd
from .pgd_bisection import pgd_bisection
from .registry import ATTACKS, BUDGETS, AttackEntry, attacks, run_attack
from .summary import attack_summary, error_vs_eps, timed
from .training import madry_training

__all__ = [
    "ATTACKS",
    "AttackEntry",
    "BUDGETS",
    "MODERN_SIZES",
    "NORMS",
    "attack_summary",
    "attacks",
    "carlini_wagner_l2",
    "certified_radius",
    "ddn",
    "error_vs_eps",
    "fgsm",
    "fmn",
    "madry_training",
    "pgd",
    "pgd_bisection",
    "run_attack",
    "timed",
]

# Chapter 7's sizes per profile, kept for its chapters: ``config.profile_sizes("modern", profile)``.
MODERN_SIZES = profile_views("modern")
