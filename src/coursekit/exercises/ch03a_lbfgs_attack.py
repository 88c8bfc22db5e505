"""Chapter 3a's exercises (``book/03a_lbfgs_attack.md``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..toy import closest_point, search_c, square_grid, toy_data, train_toy
from .bank import Exercise
from .checking import Mistake

# --- Exercise 1: D(x, l) by brute force ---------------------------------------------------------


def _labels(model: nn.Module, grid: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(grid).argmax(1)


def _nearest_of_all(model: nn.Module, x: torch.Tensor, l: int, grid: torch.Tensor) -> torch.Tensor:
    """The grid point nearest to x, whatever its label."""
    return grid[(grid - x).norm(dim=1).argmin()]


def _index_not_point(model: nn.Module, x: torch.Tensor, l: int, grid: torch.Tensor) -> torch.Tensor:
    """The index (among the points labelled l) of the nearest one, not the point."""
    inside = grid[_labels(model, grid) == l]
    return (inside - x).norm(dim=1).argmin()


def _nearest_to_origin(model: nn.Module, x: torch.Tensor, l: int, grid: torch.Tensor) -> torch.Tensor:
    """The point labelled l nearest to the origin (0, 0), not to x."""
    inside = grid[_labels(model, grid) == l]
    return inside[inside.norm(dim=1).argmin()]


def _brute_force_cases() -> list[tuple]:
    points, labels = toy_data()
    toy = train_toy(points, labels)
    grid = square_grid(101)
    x = torch.tensor([0.3, 0.25])
    return [(toy, x, 1, grid), (toy, x, 2, grid), (toy, torch.tensor([0.7, 0.35]), 2, grid)]


# --- Exercise 2: the search over c --------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A stand-in for "solve the penalty problem at c; is the solution labelled l?": every c up
    to ``critical`` reaches l, every larger c misses (the usual picture: a larger weight on |r|
    gives a closer example, until it no longer reaches l)."""

    critical: float

    def __call__(self, c: float) -> bool:
        return c <= self.critical


def _divide_after_success(reaches, c: float = 1.0, steps: int = 8) -> float | None:
    """The directions swapped: c divided by 10 after a success, multiplied after a failure."""
    success, failure = 0.0, math.inf
    for _ in range(steps):
        if reaches(c):
            success = max(success, c)
        else:
            failure = min(failure, c)
        if success and failure < math.inf:
            c = math.sqrt(success * failure)
        else:
            c = c / 10 if success else c * 10
    return success or None


def _arithmetic_midpoint(reaches, c: float = 1.0, steps: int = 8) -> float | None:
    """The bracket bisected at (lo + hi) / 2 instead of √(lo·hi)."""
    success, failure = 0.0, math.inf
    for _ in range(steps):
        if reaches(c):
            success = c
        else:
            failure = c
        if success and failure < math.inf:
            c = (success + failure) / 2
        else:
            c = c * 10 if success else c / 10
    return success or None


def _last_tried(reaches, c: float = 1.0, steps: int = 8) -> float | None:
    """The last c tried returned, whether or not it reached l."""
    success, failure = 0.0, math.inf
    for _ in range(steps):
        tried = c
        if reaches(c):
            success = c
        else:
            failure = c
        if success and failure < math.inf:
            c = math.sqrt(success * failure)
        else:
            c = c * 10 if success else c / 10
    return tried


def _search_cases() -> list[tuple]:
    return [
        (Threshold(37.0), 1.0, 8),
        (Threshold(0.02), 1.0, 8),
        (Threshold(4.5), 1.0, 3),
        (Threshold(2500.0), 0.5, 10),
    ]


EXERCISES = (
    Exercise(
        id="brute_force_closest",
        chapter="03a_lbfgs_attack",
        title="D(x, l) by brute force",
        reference=closest_point,
        mistakes=(
            Mistake(
                "you returned the grid point nearest to x whatever its label; keep only the points "
                "the model labels l (model(grid).argmax(1) == l) before looking for the nearest.",
                _nearest_of_all,
            ),
            Mistake(
                "you returned the index of the nearest point (argmin), not the point itself: index "
                "the points labelled l with it.",
                _index_not_point,
            ),
            Mistake(
                "you measured each point's distance to the origin (point.norm()), not to x: the "
                "distance to x is (point - x).norm().",
                _nearest_to_origin,
            ),
        ),
        sample_cases=_brute_force_cases,
        points=1,
    ),
    Exercise(
        id="search_c",
        chapter="03a_lbfgs_attack",
        title="The search over c",
        reference=search_c,
        mistakes=(
            Mistake(
                "you made c smaller after a success. A success means the weight on |r| can grow: "
                "a larger c asks for a closer example. Multiply c by 10 after a success, divide "
                "after a failure.",
                _divide_after_success,
            ),
            Mistake(
                "you bisected the bracket at (lo + hi) / 2. c spans orders of magnitude (0.01 to "
                "1000), so halve it on a log scale: the geometric midpoint √(lo·hi).",
                _arithmetic_midpoint,
            ),
            Mistake(
                "you returned the last c tried, which may have missed l; return the largest c that "
                "reached l (None if none did).",
                _last_tried,
            ),
        ),
        sample_cases=_search_cases,
        points=2,
        hint="keep the largest c that reached l and the smallest that missed; ×10 or ÷10 until "
        "you have both, then try √(lo·hi).",
    ),
)
