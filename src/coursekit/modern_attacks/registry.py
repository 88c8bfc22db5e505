"""The attacks of the course, one entry each: what ``optimality``, chapter 7's comparisons and
``verification.solve_times`` run, by name.

An attack is one function in its own file (``modern_attacks/ddn.py``, …; the paper's L-BFGS in
``coursekit.attack``) and one ``AttackEntry`` in ``ATTACKS`` below: its name in the tables, the
norm its perturbation is measured in, its kind, and the options each budget sets. Everything
that runs attacks by name reads ``ATTACKS``, so adding an attack to chapter 7's comparison
(``optimality.compare_with_exact``) is its file and one entry here; nothing dispatches on names.

Kinds and how an entry's ``attack`` is called:

``"minimum-norm"``
    ``attack(model, x, target, **options)``: the closest point of the target class it finds
    (the question of Tables 1–4: how far is the nearest error?). ``budgets`` maps a budget, about
    that many forward+backward passes per example (``BUDGETS``), to the options that spend it.
``"fixed-budget"``
    ``attack(model, x, y, eps, **options)``, untargeted: is there an error within ε? Its
    ``budgets`` are the options of the numbers of passes it can spend (FGSM: one).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from .._checks import check_choice
from ..attack import lbfgs_attack
from ..results import DISTANCE_NORMS, AttackResult
from .carlini_wagner import carlini_wagner_l2
from .ddn import ddn
from .fgsm import fgsm
from .fmn import fmn
from .pgd import pgd
from .pgd_bisection import pgd_bisection

__all__ = ["ATTACKS", "AttackEntry", "BUDGETS", "KINDS", "attacks", "run_attack"]

BUDGETS = (100, 1000)  # the matched budgets of the minimum-norm comparison, passes per example
KINDS = ("minimum-norm", "fixed-budget")


@dataclass(frozen=True)
class AttackEntry:
    """One attack as the tables see it: ``name``; ``attack`` the function (called as its
    ``kind`` says, module docstring); ``norm`` "2" or "inf", the norm of its perturbation;
    ``kind``; ``budgets`` {budget: the options that spend it} (read-only); ``requires`` a
    package it needs beyond coursekit's own (None: none). A ValueError names a bad field."""

    name: str
    attack: Callable[..., AttackResult]
    norm: str
    kind: str
    budgets: Mapping[int, Mapping[str, Any]]
    requires: str | None = None

    def __post_init__(self) -> None:
        check_choice("norm", self.norm, DISTANCE_NORMS)
        check_choice("kind", self.kind, KINDS)
        frozen = {budget: MappingProxyType(dict(options)) for budget, options in self.budgets.items()}
        object.__setattr__(self, "budgets", MappingProxyType(frozen))

    def available(self) -> bool:
        """Whether the package it ``requires`` (if any) can be imported here."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None


def _by_name(*entries: AttackEntry) -> Mapping[str, AttackEntry]:
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"attack names must be unique, got {names}")
    return MappingProxyType({entry.name: entry for entry in entries})


_LBFGS_1000 = {"search_steps": 10, "max_iter": 100, "history": 10, "tol": 1e-6, "ftol": 1e-9}
# C&W's learning rate and first c: the best of lr in {0.01, 0.05, 0.1}, c_init in {1e-3, 1, 10}
# on 20 images of FC100-100-10 (pixels at 0 or 1 sit where tanh is flat: small steps barely move
# them, so few steps need a large rate). Foolbox's FMN runs with its defaults.
ATTACKS = _by_name(
    AttackEntry(
        "L-BFGS, polish=0 (paper)",
        lbfgs_attack,
        "2",
        "minimum-norm",
        {100: {"polish": 0}, 1000: {**_LBFGS_1000, "polish": 0}},
    ),
    AttackEntry("L-BFGS (course)", lbfgs_attack, "2", "minimum-norm", {100: {}, 1000: _LBFGS_1000}),
    AttackEntry(
        "C&W-L2",
        carlini_wagner_l2,
        "2",
        "minimum-norm",
        {
            100: {"search_steps": 5, "steps": 20, "lr": 0.1, "c_init": 1.0},
            1000: {"search_steps": 10, "steps": 100, "lr": 0.05, "c_init": 1.0},
        },
    ),
    AttackEntry("DDN", ddn, "2", "minimum-norm", {100: {"steps": 100}, 1000: {"steps": 1000}}),
    AttackEntry(
        "FMN-L2", partial(fmn, norm="2"), "2", "minimum-norm", {100: {"steps": 100}, 1000: {"steps": 1000}}, "foolbox"
    ),
    AttackEntry(
        "PGD bisection",
        pgd_bisection,
        "inf",
        "minimum-norm",
        {100: {"bisection_steps": 10, "steps": 10}, 1000: {"bisection_steps": 20, "steps": 50}},
    ),
    AttackEntry(
        "FMN-Linf",
        partial(fmn, norm="inf"),
        "inf",
        "minimum-norm",
        {100: {"steps": 100}, 1000: {"steps": 1000}},
        "foolbox",
    ),
    AttackEntry("FGSM", fgsm, "inf", "fixed-budget", {1: {}}),
    AttackEntry("PGD", pgd, "inf", "fixed-budget", {100: {"steps": 100}, 1000: {"steps": 1000}}),
    AttackEntry("PGD-L2", partial(pgd, norm="2"), "2", "fixed-budget", {100: {"steps": 100}, 1000: {"steps": 1000}}),
)


def attacks(kind: str | None = None, norm: str | None = None) -> tuple[AttackEntry, ...]:
    """The entries of ``ATTACKS`` of that ``kind`` and ``norm`` (None: any), in its order."""
    if kind is not None:
        check_choice("kind", kind, KINDS)
    if norm is not None:
        check_choice("norm", norm, DISTANCE_NORMS)
    return tuple(e for e in ATTACKS.values() if kind in (None, e.kind) and norm in (None, e.norm))


def run_attack(name: str, model: nn.Module, x: torch.Tensor, target: torch.Tensor, budget: int) -> AttackResult:
    """The minimum-norm attack ``name`` (an entry of ``ATTACKS``) at ``budget`` passes per
    example (one of its budgets: 100 or 1000), targeted at ``target`` [N] for the images x [N, ...]."""
    check_choice("name", name, [entry.name for entry in attacks("minimum-norm")])
    entry = ATTACKS[name]
    check_choice("budget", budget, tuple(entry.budgets))
    return entry.attack(model, x, target, **entry.budgets[budget])
