"""A 2-D toy for §4.1: three classes in the unit square, where D(x, l) can be found by looking.

In the plane, the paper's problem "the closest point x + r of the box [0, 1]² that f labels l"
can be solved by brute force: classify every point of a fine grid and keep the nearest one
labelled l. That is the *exact* answer (to within the grid's spacing) that the penalty method
approximates, drawn beside the penalty method's solution for each c (``toy_slider``), so that
the c slider means something before it is shown on MNIST images (where a grid over 784 pixels
is out of the question).

``toy_data``      three Gaussian clusters of points in [0, 1]², labels 0, 1, 2
``train_toy``     a small tanh MLP (2 → 32 → 32 → 3), full-batch Adam, about a second on a CPU
``square_grid``   the grid of points the brute force classifies
``closest_point`` D(x, l) by brute force over the grid
``search_c``      the paper's line search for its "minimum c" (the largest weight on |r| that reaches l)
``toy_path``      the penalty problem's solution for a grid of c (``attack.solve_penalty``)
``toy_figure`` / ``toy_slider``  the picture, and a slider over c (``widgets.FrameSlider``)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ._checks import check_int, check_labels

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from matplotlib.figure import Figure

    from .widgets import FrameSlider


__all__ = [
    "CENTRES",
    "CLASS_COLORS",
    "SPREAD",
    "classify",
    "closest_point",
    "search_c",
    "solve_toy_penalty",
    "square_grid",
    "toy_data",
    "toy_figure",
    "toy_map",
    "toy_path",
    "toy_slider",
    "ToyPath",
    "train_toy",
]

CENTRES = ((0.25, 0.3), (0.75, 0.3), (0.5, 0.78))  # the three clusters' centres
SPREAD = 0.11  # their standard deviation
CLASS_COLORS = ("tab:blue", "tab:orange", "tab:green")


def toy_data(per_class: int = 100, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three Gaussian clusters (``CENTRES``, stddev ``SPREAD``) clipped to the box [0, 1]².

    Returns points [3·per_class, 2] (float32, in [0, 1]) and labels [3·per_class] (int64, 0-2).

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    check_int("per_class", per_class)
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor(CENTRES).repeat_interleave(per_class, 0)
    points = centres + SPREAD * torch.randn(centres.shape, generator=generator)
    labels = torch.arange(len(CENTRES)).repeat_interleave(per_class)
    return points.clamp(0, 1), labels


def train_toy(
    points: torch.Tensor, labels: torch.Tensor, *, hidden: int = 32, steps: int = 400, seed: int = 0
) -> nn.Module:
    """A tanh MLP 2 → hidden → hidden → 3 trained by full-batch Adam (lr 0.02) on cross-entropy.

    ``points`` [N, 2], ``labels`` [N] in 0-2. Deterministic for a seed; returned in eval mode.

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    if not isinstance(points, torch.Tensor) or points.dim() != 2 or points.shape[1] != 2:
        raise ValueError(f"points must be a tensor [N, 2], got {getattr(points, 'shape', points)!r}")
    labels = check_labels("labels", labels, len(points), len(CENTRES))
    check_int("hidden", hidden)
    check_int("steps", steps)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, len(CENTRES))
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(points), labels).backward()
        optimiser.step()
    return model.eval()


def square_grid(resolution: int = 1001) -> torch.Tensor:
    """The points of a ``resolution`` × ``resolution`` grid of the box [0, 1]², [resolution², 2]
    (spacing 1 / (resolution − 1)), x varying fastest.

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    check_int("resolution", resolution, minimum=2)
    axis = torch.linspace(0, 1, resolution)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    return torch.stack([xx.flatten(), yy.flatten()], 1)


def classify(model: nn.Module, points: torch.Tensor, chunk: int = 200_000) -> torch.Tensor:
    """The model's labels [N] for points [N, 2], in chunks (no gradients)."""
    with torch.no_grad():
        return torch.cat([model(points[i : i + chunk]).argmax(1) for i in range(0, len(points), chunk)])


def closest_point(model: nn.Module, x: torch.Tensor, target: int, grid: torch.Tensor) -> torch.Tensor:
    """D(x, target) by brute force: the point of ``grid`` [G, 2] that ``model`` labels ``target``
    nearest to x [2] (Euclidean). Exact to within the grid's spacing. Returns a point [2].

    Raises ValueError if no grid point is labelled ``target`` (then D(x, target) is not in the box
    as far as the grid can tell).

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    inside = classify(model, grid) == int(target)
    if not bool(inside.any()):
        raise ValueError(f"no point of the grid is labelled target={target!r}")
    candidates = grid[inside]
    return candidates[(candidates - x.reshape(1, 2)).norm(dim=1).argmin()]


def search_c(reaches: Callable[[float], bool], c: float = 1.0, steps: int = 8) -> float | None:
    """The line search over c of §4.1, for one image: the largest c found whose penalty solution
    reaches the target (the paper's "minimum c", read as the smallest weight 1/c on the loss).

    ``reaches(c)`` solves min c·|r|² + loss_f(x + r, l) over the box and says whether the
    solution is labelled l (a larger c weighs |r| more: a closer example, until it misses).
    ``steps`` values of c are tried, starting at ``c`` (> 0): while no failure is known c is
    multiplied by 10 after each success, while no success is known divided by 10 after each
    failure; once a success lo and a failure hi bracket it, the next c is the geometric midpoint
    √(lo·hi) (c spans orders of magnitude). Returns the largest c that reached l, None if none did.
    """
    if not (isinstance(c, (int, float)) and math.isfinite(c) and c > 0):
        raise ValueError(f"c must be a positive number, got {c!r}")
    check_int("steps", steps)
    success, failure = 0.0, math.inf  # the largest c known to reach, the smallest known to miss
    for _ in range(steps):
        if reaches(c):
            success = c
        else:
            failure = c
        if success and failure < math.inf:
            c = math.sqrt(success * failure)
        else:
            c = c * 10 if success else c / 10
    return success or None


@dataclass
class ToyPath:
    """The penalty problem's solution over a grid of c, for one point and target of the toy."""

    x: torch.Tensor  # [2] the point attacked
    target: int  # l
    closest: torch.Tensor  # [2] D(x, l) by brute force
    c_values: np.ndarray  # [G] weights on |r|², increasing
    solutions: torch.Tensor  # [G, 2] the minimiser x + r for each c
    labels: torch.Tensor  # [G] the model's label of each solution
    p_target: torch.Tensor  # [G] the probability of the target at each solution

    @property
    def distance(self) -> np.ndarray:
        """|r| for each c, [G]."""
        return (self.solutions - self.x).norm(dim=1).numpy()

    @property
    def exact_distance(self) -> float:
        """|D(x, l) − x|."""
        return float((self.closest - self.x).norm())

    def largest_reaching(self) -> int | None:
        """The index of the largest c whose solution the model labels ``target`` (None: none)."""
        hits = np.flatnonzero(self.labels.numpy() == self.target)
        return int(hits.max()) if len(hits) else None


def solve_toy_penalty(
    model: nn.Module, x: torch.Tensor, target: int, c_values: Sequence[float] | np.ndarray
) -> torch.Tensor:
    """The minimiser x + r of c·|r|² + loss_f(x + r, target) over the box [0, 1]², for each c of
    ``c_values`` [G] (positive), by scipy's L-BFGS-B; [G, 2]. The largest c is solved first,
    from x, and each smaller c starts from the solution of the previous one (as the attack's
    search over c warm-starts), so the solutions form a continuous path out of x."""
    from scipy.optimize import minimize

    x0 = np.asarray(x, dtype=float).reshape(2)
    label = torch.tensor([int(target)])

    def objective(v, c):
        point = torch.tensor(v[None], dtype=torch.float32, requires_grad=True)
        loss = nn.functional.cross_entropy(model(point), label)
        value = c * float(((v - x0) ** 2).sum()) + loss.item()
        (grad,) = torch.autograd.grad(loss, point)
        return float(value), 2 * c * (v - x0) + grad[0].double().numpy()

    solutions, start = {}, x0
    for index in np.argsort(c_values)[::-1]:
        start = minimize(
            objective,
            start,
            args=(float(c_values[index]),),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0, 1)] * 2,
            options={"gtol": 1e-9, "ftol": 1e-12, "maxiter": 2000},
        ).x
        solutions[index] = start
    return torch.tensor(np.stack([solutions[i] for i in range(len(c_values))]), dtype=torch.float32)


def toy_path(
    model: nn.Module, x: torch.Tensor, target: int, c_values: Sequence[float] | np.ndarray, *, resolution: int = 1001
) -> ToyPath:
    """Solve min c·|r|² + loss_f(x + r, target) over the box for every c in ``c_values``
    (``solve_toy_penalty``) and find D(x, target) by brute force on a grid of ``resolution``²
    points. ``x``: a point [2] in [0, 1]²; ``c_values``: positive, increasing.

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    c = np.asarray(c_values, dtype=float)
    if c.ndim != 1 or len(c) == 0 or not (np.isfinite(c).all() and (c > 0).all()) or (np.diff(c) <= 0).any():
        raise ValueError(f"c_values must be positive and increasing, got {c_values!r}")
    x = torch.as_tensor(x, dtype=torch.float32).reshape(2)
    if not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError(f"x must lie in the box [0, 1]², got {x.tolist()}")
    target = check_labels("target", torch.tensor([target]), 1, len(CENTRES))  # type: ignore[assignment]
    solutions = solve_toy_penalty(model, x, int(target), c)
    with torch.no_grad():
        probabilities = torch.softmax(model(solutions), 1)
    return ToyPath(
        x=x,
        target=int(target),
        closest=closest_point(model, x, int(target), square_grid(resolution)),
        c_values=c,
        solutions=solutions,
        labels=probabilities.argmax(1),
        p_target=probabilities[:, int(target)],
    )


def _regions(ax, model: nn.Module, target: int, resolution: int = 300) -> None:
    """The model's three regions, lightly coloured (the target's stronger), with boundaries."""
    from matplotlib.colors import ListedColormap, to_rgb

    grid = square_grid(resolution)
    labels = classify(model, grid).reshape(resolution, resolution).numpy()
    colors = [(*to_rgb(c), 0.55 if k == target else 0.15) for k, c in enumerate(CLASS_COLORS)]
    ax.imshow(
        labels,
        origin="lower",
        extent=(0, 1, 0, 1),
        cmap=ListedColormap(colors),
        vmin=-0.5,
        vmax=len(CLASS_COLORS) - 0.5,
        interpolation="nearest",
    )
    axis = np.linspace(0, 1, resolution)
    ax.contour(axis, axis, labels, levels=[0.5, 1.5], colors="k", linewidths=0.6)
    for k, (cx, cy) in enumerate(CENTRES):  # the labels written out: colour is not the only cue
        ax.text(cx, cy - 0.2, f"label {k}", ha="center", va="center", fontsize=7, color="0.15")


def toy_map(
    model: nn.Module,
    x: torch.Tensor,
    closest: dict[int, torch.Tensor],
    points: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> Figure:
    """The toy before any attack: the box [0, 1]² coloured by the model's label (boundaries
    black), the training points (if given), the point x, and for each target l of ``closest``
    ({l: D(x, l) [2]}) the closest point D(x, l) with the circle of radius |D(x, l) − x|.

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    _regions(ax, model, target=-1)
    if points is not None and labels is not None:
        ax.scatter(*points.T, c=[CLASS_COLORS[k] for k in labels.tolist()], s=4, alpha=0.5)  # type: ignore[misc]
    x = torch.as_tensor(x, dtype=torch.float32).reshape(2)
    ax.plot(*x, "ko", markersize=6, label="x")
    for target, point in closest.items():
        radius = float((point - x).norm())
        ax.add_patch(
            plt.Circle(x.tolist(), radius, fill=False, linestyle="--", color=CLASS_COLORS[target], linewidth=1.2)  # type: ignore[arg-type]
        )
        ax.plot(
            *point,
            "*",
            color=CLASS_COLORS[target],
            markeredgecolor="k",
            markersize=14,
            label=f"D(x, {target}): |r| = {radius:.3f}",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])
    ax.legend(loc="upper left", fontsize=7, framealpha=0.9)
    fig.tight_layout()
    from .figures import describe

    stars = "; ".join(
        f"for l = {target} it is ({float(point[0]):.3f}, {float(point[1]):.3f}), at distance "
        f"{float((point - x).norm()):.3f} from x (a dashed circle of that radius around x)"
        for target, point in closest.items()
    )
    return describe(
        fig,
        f"The unit square coloured by the toy model's label (three regions, labels 0, 1 and 2, "
        f"black decision boundaries between them), the point x = ({float(x[0]):.2f}, "
        f"{float(x[1]):.2f}) and, as a star, the closest point the model labels l: {stars}.",
    )


def _plane(ax, model: nn.Module, path: ToyPath, points, labels):
    """One target's panel of ``toy_figure``; returns the marker of the current solution."""
    _regions(ax, model, path.target)
    if points is not None and labels is not None:
        ax.scatter(*points.T, c=[CLASS_COLORS[k] for k in labels.tolist()], s=3, alpha=0.4)
    ax.add_patch(plt.Circle(path.x.tolist(), path.exact_distance, fill=False, linestyle="--", color="k", linewidth=0.8))  # type: ignore[arg-type]
    ax.plot(*path.solutions.T, color="0.3", linewidth=1, marker=".", markersize=3)
    ax.plot(*path.x, "ko", markersize=5, label="x")
    ax.plot(*path.closest, "k*", markersize=12, label="D(x, l), brute force")
    (current,) = ax.plot([], [], "o", color="tab:red", markersize=7, label="penalty solution")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])
    ax.legend(loc="upper left", fontsize=6, framealpha=0.9)
    return current


def _ratio_panel(ax, paths: list[ToyPath]):
    """|r| / |D(x, l) − x| against c for each target: solid where the solution reaches l."""
    for path in paths:
        ratio = path.distance / path.exact_distance
        color = CLASS_COLORS[path.target]
        ax.semilogx(path.c_values, ratio, color=color, linestyle=":", linewidth=1)
        reached = np.where(path.labels.numpy() == path.target, ratio, np.nan)
        ax.semilogx(path.c_values, reached, color=color, linewidth=2, label=f"l = {path.target}")
    ax.axhline(1, color="k", linestyle="--", linewidth=0.8)
    ax.set(xlabel="c (weight on |r|²)", ylabel="|r| / |D(x, l) − x|")
    ax.set_title("solid: f(x + r) = l", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return ax.axvline(paths[0].c_values[0], color="tab:red", linestyle=":")


def toy_figure(
    model: nn.Module, paths: list[ToyPath], points: torch.Tensor | None = None, labels: torch.Tensor | None = None
) -> tuple[Figure, Callable[[int], None]]:
    """The toy's picture and ``update(index)``, which moves it to the index-th c.

    One panel per path (target): the box [0, 1]² coloured by the model's label (the target
    region l darker, boundaries black), the training points (if given), x, D(x, l) with the
    circle of radius |D(x, l) − x| around x, the penalty solutions for all c (grey) and for the
    index-th c (red). Last panel: |r| / |D(x, l) − x| against c for each target. The paths
    must share x and the c grid."""
    if not paths or any(
        not np.array_equal(p.c_values, paths[0].c_values) or not torch.equal(p.x, paths[0].x) for p in paths
    ):
        raise ValueError("paths must be a non-empty list of ToyPath with one x and one c grid")
    fig, axes = plt.subplots(1, len(paths) + 1, figsize=(4 * len(paths) + 4.4, 3.9))
    currents = [_plane(ax, model, path, points, labels) for ax, path in zip(axes, paths)]
    marker = _ratio_panel(axes[-1], paths)

    def update(index: int) -> None:
        c = paths[0].c_values[index]
        marker.set_xdata([c, c])
        for ax, path, current in zip(axes, paths, currents):
            point, label = path.solutions[index], int(path.labels[index])
            current.set_data([point[0].item()], [point[1].item()])
            ratio = path.distance[index] / path.exact_distance
            ax.set_title(f"l = {path.target}, c = {c:.3g}: f = {label}, |r| = {ratio:.2f}·|D − x|", fontsize=8)

    update(0)
    fig.tight_layout()
    return fig, update


def toy_slider(
    model: nn.Module,
    paths: list[ToyPath],
    points: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    index: int | None = None,
) -> FrameSlider:
    """A ``widgets.FrameSlider`` over the paths' c grid, one ``toy_figure`` frame per c,
    starting at ``index`` (default: the middle of the grid).

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    from .widgets import FrameSlider, render_frames

    count = len(paths[0].c_values) if paths else 0
    index = count // 2 if index is None else index
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < max(count, 1):
        raise ValueError(f"index must be an int in [0, {count - 1}], got {index!r}")
    frames = render_frames(*toy_figure(model, paths, points, labels), count)
    descriptions = [toy_description(paths, i) for i in range(count)]
    return FrameSlider("c", [f"{c:.3g}" for c in paths[0].c_values], frames, index, descriptions)


def toy_description(paths: list[ToyPath], index: int) -> str:
    """The text description (alt text) of ``toy_figure`` at the index-th c, with its numbers."""
    c = paths[0].c_values[index]
    parts = "; ".join(
        f"target {p.target}: the solution is classified {int(p.labels[index])}, "
        f"|r| = {p.distance[index] / p.exact_distance:.2f} times the exact distance"
        for p in paths
    )
    return (
        f"The penalty method on the toy problem at c = {c:.3g}: per target, the regions of the unit square, "
        f"x, the closest point of the target class, and the penalty solutions along c. {parts}."
    )
