"""The half-space lower bound of chapter 3, part 2, against the exact QP and a projection."""

import pytest
import torch

from coursekit.exact import linear_min_perturbation
from coursekit.linear import half_space_bound


def random_linear(k=4, n=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(k, n, generator=generator, dtype=torch.float64),
        torch.randn(k, generator=generator, dtype=torch.float64),
    )


def test_one_rival_without_the_box_the_bound_is_the_projection():
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    b = torch.zeros(2, dtype=torch.float64)
    x = torch.tensor([0.2, 0.7], dtype=torch.float64)  # class 1 wins by 0.5
    # l = 0 beats 1 once r_0 − r_1 ≥ 0.5: the half-space at distance 0.5 / √2
    assert half_space_bound(W, b, x, 0) == pytest.approx(0.5 / 2**0.5)
    assert half_space_bound(W, b, x, 1) == 0.0  # already labelled 1


@pytest.mark.parametrize("seed", range(5))
def test_the_bound_never_exceeds_the_exact_minimum(seed):
    W, b = random_linear(seed=seed)
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    targets = torch.tensor([0, 2, 3])
    exact = linear_min_perturbation(W, b, x, targets)
    for i, target in enumerate(targets.tolist()):
        bound = half_space_bound(W, b, x[i], target)
        length = float(exact.r[i].norm())  # |D(x, l) − x|, inf rows have r = 0
        if torch.isfinite(exact.distortion[i]):
            assert bound <= length + 1e-7


def test_with_two_classes_and_room_in_the_box_the_bound_is_exact():
    W = torch.tensor([[1.0, -1.0, 0.5], [-0.5, 1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([0.0, 0.1], dtype=torch.float64)
    x = torch.tensor([[0.5, 0.5, 0.5]], dtype=torch.float64)  # class 1 wins by 0.6
    exact = linear_min_perturbation(W, b, x, torch.tensor([0]))
    assert half_space_bound(W, b, x[0], 0) == pytest.approx(float(exact.r[0].norm()), rel=1e-6)


def test_bad_input_is_named():
    W, b = random_linear()
    with pytest.raises(ValueError, match="x has"):
        half_space_bound(W, b, torch.zeros(5), 0)
    with pytest.raises(ValueError, match="target"):
        half_space_bound(W, b, torch.zeros(6), 4)
    with pytest.raises(ValueError, match="weight"):
        half_space_bound(W, b[:3], torch.zeros(6), 0)
