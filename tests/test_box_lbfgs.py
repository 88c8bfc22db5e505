"""The batched box L-BFGS solver on its own, against problems with a known answer."""

import torch

from coursekit.box_lbfgs import BoxLbfgsOptions, LbfgsState, lbfgs_direction, minimize_box


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
