"""The 2-D toy of chapter 3: brute force D(x, l), the penalty path over c, the slider."""

import math

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from coursekit.attack import solve_penalty
from coursekit.exact import linear_min_perturbation
from coursekit.toy import (
    classify,
    closest_point,
    solve_toy_penalty,
    square_grid,
    toy_data,
    toy_figure,
    toy_map,
    toy_path,
    toy_slider,
    train_toy,
)

matplotlib.use("Agg")


def linear_toy() -> nn.Linear:
    """Three classes cut by straight lines: class 0 left, 1 bottom right, 2 top right."""
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[-4.0, 0.0], [3.0, -3.0], [3.0, 3.0]]))
        layer.bias.copy_(torch.tensor([2.0, 0.0, -3.0]))
    return layer.eval()


def test_toy_data_is_three_labelled_clusters_in_the_box():
    points, labels = toy_data(per_class=20, seed=1)
    assert points.shape == (60, 2) and labels.tolist() == [0] * 20 + [1] * 20 + [2] * 20
    assert float(points.min()) >= 0 and float(points.max()) <= 1
    assert torch.equal(points, toy_data(per_class=20, seed=1)[0])
    with pytest.raises(ValueError, match="per_class"):
        toy_data(per_class=0)


def test_the_toy_model_learns_its_data_and_is_deterministic():
    points, labels = toy_data()
    model = train_toy(points, labels, steps=200)
    assert (classify(model, points) == labels).float().mean() > 0.9
    again = train_toy(points, labels, steps=200)
    assert torch.equal(model[0].weight, again[0].weight)
    with pytest.raises(ValueError, match="points"):
        train_toy(points[:, :1], labels)


def test_square_grid_covers_the_box():
    grid = square_grid(3)
    assert grid.shape == (9, 2)
    assert grid[:3].tolist() == [[0.0, 0.0], [0.5, 0.0], [1.0, 0.0]]  # x varies fastest
    with pytest.raises(ValueError, match="resolution"):
        square_grid(1)


@pytest.mark.parametrize("x, target", [((0.2, 0.3), 1), ((0.2, 0.3), 2), ((0.1, 0.9), 1)])
def test_brute_force_finds_the_exact_closest_point_of_a_linear_model(x, target):
    model = linear_toy()
    x = torch.tensor(x)
    found = closest_point(model, x, target, square_grid(401))
    exact = linear_min_perturbation(
        model.weight.double(), model.bias.double(), x[None].double(), torch.tensor([target])
    )
    best = x + exact.r[0].float()  # the convex QP's answer: an independent computation
    spacing = 1 / 400
    assert abs((found - x).norm() - (best - x).norm()) <= spacing * 2**0.5
    assert (found - best).norm() <= 3 * spacing
    assert classify(model, found[None]).item() == target


def test_closest_point_refuses_a_target_no_point_has():
    model = linear_toy()
    with torch.no_grad():
        model.bias[2] = -100.0  # class 2 nowhere in the box
    with pytest.raises(ValueError, match="target=2"):
        closest_point(model, torch.tensor([0.2, 0.3]), 2, square_grid(51))


def test_the_penalty_path_agrees_with_the_attack_solver_and_shrinks_with_c():
    model = linear_toy()  # a convex loss: one minimiser per c
    x, c = torch.tensor([0.2, 0.3]), np.logspace(-1, 2, 7)
    ours = solve_toy_penalty(model, x, 1, c)
    theirs = solve_penalty(
        model,
        x.expand(len(c), 2).contiguous(),
        torch.ones(len(c), dtype=torch.long),
        torch.tensor(c, dtype=torch.float32),
    )
    torch.testing.assert_close(ours, theirs, atol=2e-3, rtol=0)
    path = toy_path(model, x, 1, c, resolution=201)
    assert np.all(np.diff(path.distance) <= 1e-6)  # a larger weight on |r|² never gives a longer r
    assert path.largest_reaching() is not None
    index = path.largest_reaching()
    assert path.labels[index] == 1 and (path.labels[index + 1 :] != 1).all()
    assert path.distance[index] >= path.exact_distance - 1 / 200  # no solution beats D(x, l)
    with pytest.raises(ValueError, match="increasing"):
        toy_path(model, x, 1, c[::-1])
    with pytest.raises(ValueError, match="box"):
        toy_path(model, torch.tensor([1.2, 0.3]), 1, c)


def test_figure_and_slider_follow_the_path():
    model = linear_toy()
    x, c = torch.tensor([0.2, 0.3]), np.logspace(-1, 2, 4)
    paths = [toy_path(model, x, t, c, resolution=101) for t in (1, 2)]
    points, labels = toy_data(per_class=5)
    fig, update = toy_figure(model, paths, points, labels)
    update(3)
    assert fig.axes[0].get_title().startswith("l = 1, c = 100")
    matplotlib.pyplot.close(fig)
    slider = toy_slider(model, paths, index=1)
    assert len(slider.frames) == 4 and slider.default == 1 and slider.labels[0] == "0.1"
    with pytest.raises(ValueError, match="index"):
        toy_slider(model, paths, index=4)
    other = toy_path(model, torch.tensor([0.3, 0.3]), 1, c, resolution=101)
    with pytest.raises(ValueError, match="one x and one c grid"):
        toy_figure(model, [paths[0], other])
    fig = toy_map(model, x, {t: p.closest for t, p in zip((1, 2), paths)}, points, labels)
    assert len(fig.axes[0].lines) >= 3
    matplotlib.pyplot.close(fig)


def test_search_c_brackets_then_bisects_on_a_log_scale():
    from coursekit.toy import search_c

    tried: list[float] = []

    def reaches(c):
        tried.append(c)
        return c <= 37.0

    best = search_c(reaches, 1.0, 6)
    assert tried[:3] == [1.0, 10.0, 100.0]  # ×10 while it reaches, until it misses
    assert tried[3] == pytest.approx(math.sqrt(10 * 100))  # then the geometric midpoint
    assert best == max(c for c in tried if c <= 37.0)
    assert 30 < search_c(lambda c: c <= 37.0, 1.0, 20) <= 37.0
    tried.clear()
    assert search_c(reaches, 1000.0, 2) is None and tried == [1000.0, 100.0]  # ÷10 while it misses
    assert search_c(lambda c: True, 2.0, 3) == 200.0
    with pytest.raises(ValueError, match="c must be"):
        search_c(reaches, -1.0)
    with pytest.raises(ValueError, match="steps"):
        search_c(reaches, 1.0, 0)
