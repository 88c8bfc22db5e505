"""The batched box L-BFGS solver on its own, against problems with a known answer."""

import pytest
import torch

from coursekit.box_lbfgs import (
    BoxLbfgsOptions,
    LbfgsState,
    gradient_converged,
    lbfgs_direction,
    minimize_box,
    progress_stalled,
)


def test_separable_quadratic_in_a_box_is_the_clamped_centre():
    """min Σ w_j (x_j − a_j)² over [0, 1]^m: the answer is clamp(a, 0, 1), row by row."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(6, 20, generator=generator, dtype=torch.float64) * 3 - 1  # many centres outside the box
    w = torch.rand(6, 20, generator=generator, dtype=torch.float64) + 0.1
    seen = []

    def evaluate(x, rows):
        seen.append(rows.clone())
        diff = x - a[rows]
        return (w[rows] * diff.pow(2)).sum(1), 2 * w[rows] * diff

    options = BoxLbfgsOptions(lower=0.0, upper=1.0, max_iter=200, history=5, tol=1e-10, ftol=0.0, check_every=5)
    x = minimize_box(evaluate, torch.full((6, 20), 0.5, dtype=torch.float64), options)
    torch.testing.assert_close(x, a.clamp(0, 1), atol=1e-7, rtol=0)
    assert any(len(rows) < 6 for rows in seen)  # converged rows were dropped from the batch


def test_direction_with_one_pair_is_the_bfgs_update_of_the_scaled_identity():
    """With one stored pair (s, y) and scaling γ, H = (I − ρsyᵀ)γ(I − ρysᵀ) + ρssᵀ."""
    generator = torch.Generator().manual_seed(1)
    m, h = 7, 3
    s, y, g = (torch.randn(m, generator=generator, dtype=torch.float64) for _ in range(3))
    y = y + s  # s·y > 0
    state = LbfgsState.empty(torch.zeros(1, m, dtype=torch.float64), h)
    rho = 1 / (s @ y)
    state.P[0, 0], state.P[0, h] = s, y
    state.SY[0, 0, 0], state.YY[0, 0, 0], state.rho[0, 0] = s @ y, y @ y, rho
    state.age[0] = torch.tensor([0, 1, 2])
    gamma = torch.tensor([0.7], dtype=torch.float64)
    ours = lbfgs_direction(g[None], state.P, state.SY, state.YY, state.rho, state.age, gamma)[0]
    eye = torch.eye(m, dtype=torch.float64)
    H = (eye - rho * torch.outer(s, y)) @ (0.7 * eye) @ (eye - rho * torch.outer(y, s)) + rho * torch.outer(s, s)
    torch.testing.assert_close(ours, H @ g)


def _textbook_two_loop(g, pairs, gamma):
    q, alphas = g.clone(), []
    for s, y in pairs:  # newest first
        rho = 1 / (s @ y)
        a = rho * (s @ q)
        q -= a * y
        alphas.append((a, rho))
    z = gamma * q
    for (s, y), (a, rho) in reversed(list(zip(pairs, alphas))):
        z += (a - rho * (y @ z)) * s
    return z


def test_compact_direction_equals_the_two_loop_recursion():
    torch.manual_seed(0)
    n, m, h = 5, 30, 6
    P = torch.zeros(n, 2 * h, m, dtype=torch.float64)
    rho = torch.zeros(n, h, dtype=torch.float64)
    age = torch.zeros(n, h, dtype=torch.long)
    g = torch.randn(n, m, dtype=torch.float64)
    gamma = torch.rand(n, dtype=torch.float64) + 0.5
    expected = []
    for i in range(n):
        a = torch.randn(m, m, dtype=torch.float64)
        hessian = a @ a.T + m * torch.eye(m, dtype=torch.float64)
        filled = h - i % 3  # some images have empty slots
        order = torch.randperm(h)  # the pairs sit in scrambled slots
        pairs = []
        for j in range(h):
            slot = order[j].item()
            age[i, slot] = j
            if j < filled:
                s = torch.randn(m, dtype=torch.float64)
                y = hessian @ s
                P[i, slot], P[i, h + slot], rho[i, slot] = s, y, 1 / (s @ y)
                pairs.append((s, y))
        expected.append(_textbook_two_loop(g[i], pairs, gamma[i]))
    SY = P[:, :h] @ P[:, h:].transpose(1, 2)
    YY = P[:, h:] @ P[:, h:].transpose(1, 2)
    got = lbfgs_direction(g, P, SY, YY, rho, age, gamma)
    assert torch.allclose(got, torch.stack(expected), rtol=1e-10, atol=1e-12)


def _options(**changes):
    settings = dict(lower=0.0, upper=1.0, max_iter=50, history=5, tol=1e-4, ftol=1e-6, check_every=10)
    return BoxLbfgsOptions(**{**settings, **changes})


def test_the_projected_gradient_test_stops_a_row_at_a_bound_it_presses_against():
    """A row whose gradient pushes only out of the box (at a bound) has a projected gradient of
    zero: converged, though its plain gradient is large; a row with a free descent is not."""
    options = _options(tol=1e-3)
    x = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.5, 0.5]])
    g = torch.tensor([[5.0, -5.0], [0.0, 2e-3], [float("nan"), 0.0]])
    assert gradient_converged(x, g, options).tolist() == [True, False, True]  # NaN: the row stops


def test_the_progress_test_stops_only_accepted_steps_that_gain_too_little():
    options = _options(ftol=1e-3)
    fx = torch.tensor([10.0, 10.0, 0.5, 0.5])
    f_trial = torch.tensor([9.995, 9.0, 0.4995, 0.4995])  # gains 5e-4·|F|, 0.1·|F|, 5e-4 (|F| < 1), 5e-4
    accept = torch.tensor([True, True, True, False])
    assert progress_stalled(accept, fx, f_trial, options).tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    "change, name",
    [
        ({"max_iter": 0}, "max_iter"),
        ({"history": 1.5}, "history"),
        ({"check_every": -1}, "check_every"),
        ({"tol": -1e-3}, "tol"),
        ({"ftol": float("nan")}, "ftol"),
        ({"lower": 1.0, "upper": 0.0}, "bounds"),
    ],
)
def test_bad_options_are_refused_naming_the_option(change, name):
    with pytest.raises(ValueError, match=name):
        _options(**change)
