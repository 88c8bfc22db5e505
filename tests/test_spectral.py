import math

import pytest
import torch
import torch.nn.functional as F

from coursekit.models import build
from coursekit.spectral import (circular_conv, conv_operator_norm, conv_operator_norm_bound, conv_operator_norm_power,
                                conv_singular_values, explicit_operator_matrix, fourier_blocks, layer_bounds,
                                linear_operator_norm, zero_padding_grid)

CASES = [  # (D, C, k, stride, N)
    (3, 2, 3, 1, 6), (4, 3, 3, 2, 8), (2, 3, 5, 3, 9), (5, 2, 4, 4, 8),
    (3, 5, 1, 1, 5), (6, 2, 3, 2, 6), (2, 4, 2, 4, 12), (4, 4, 5, 1, 7),
]


def _weight(d, c, k, seed=0):
    return torch.randn(d, c, k, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("d,c,k,stride,n", CASES)
def test_fourier_norm_equals_the_explicit_matrix(d, c, k, stride, n):
    w = _weight(d, c, k)
    matrix = explicit_operator_matrix(lambda v: circular_conv(v, w, stride), (c, n, n))
    exact = torch.linalg.matrix_norm(matrix, 2)
    assert conv_operator_norm(w, stride, (n, n)).item() == pytest.approx(exact.item(), rel=1e-5)


@pytest.mark.parametrize("d,c,k,stride,n", CASES)
def test_full_spectrum_equals_the_explicit_matrix(d, c, k, stride, n):
    w = _weight(d, c, k, seed=1)
    matrix = explicit_operator_matrix(lambda v: circular_conv(v, w, stride), (c, n, n))
    explicit = torch.linalg.svdvals(matrix)
    ours = conv_singular_values(w, stride, (n, n))
    count = min(len(ours), len(explicit))
    assert torch.allclose(ours[:count], explicit[:count], rtol=1e-6, atol=1e-9)
    assert (explicit[count:].abs() < 1e-8).all()  # the rest of the explicit spectrum is zero


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_the_stride_normalisation_is_one_over_delta(stride):
    """max σ(A(ξ)) must be divided by Δ, not by Δ² as eq. 1 of the paper writes."""
    w = _weight(3, 2, 3, seed=stride)
    n = 4 * stride
    exact = torch.linalg.matrix_norm(explicit_operator_matrix(lambda v: circular_conv(v, w, stride), (2, n, n)), 2)
    raw = torch.linalg.matrix_norm(fourier_blocks(w, stride, (n, n)), ord=2).max()
    assert (raw / stride).item() == pytest.approx(exact.item(), rel=1e-9)
    assert (raw / stride**2).item() < 0.9 * exact.item()


@pytest.mark.parametrize("d,c,k,stride,n", CASES[:5])
def test_fourier_equals_power_iteration_on_the_circular_layer(d, c, k, stride, n):
    w = _weight(d, c, k, seed=2)
    power = conv_operator_norm_power(w, stride, input_size=(n, n), circular=True, tol=1e-10)
    assert conv_operator_norm(w, stride, (n, n)).item() == pytest.approx(power.item(), rel=1e-4)


def test_float32_on_a_real_layer_size():
    w = torch.randn(16, 8, 3, 3, generator=torch.Generator().manual_seed(0))
    power = conv_operator_norm_power(w, 1, input_size=(16, 16), circular=True, tol=1e-8)
    assert conv_operator_norm(w, 1, (16, 16)).item() == pytest.approx(power.item(), rel=1e-4)


@pytest.mark.parametrize("d,c,k,stride,n,padding", [(3, 2, 3, 1, 6, 1), (4, 3, 3, 2, 8, 1), (2, 3, 5, 3, 9, 2),
                                                    (5, 2, 4, 4, 8, 0), (4, 2, 5, 1, 7, 2)])
def test_zero_padding_bound_holds_for_the_real_layer(d, c, k, stride, n, padding):
    w = _weight(d, c, k, seed=3)
    real_matrix = explicit_operator_matrix(lambda v: F.conv2d(v, w, stride=stride, padding=padding), (c, n, n))
    real = torch.linalg.matrix_norm(real_matrix, 2).item()
    power = conv_operator_norm_power(w, stride, padding, (n, n), tol=1e-10).item()
    assert power == pytest.approx(real, rel=1e-4)  # the power iteration's adjoint is the true one
    assert conv_operator_norm_bound(w, stride, padding, (n, n)).item() >= real * (1 - 1e-9)


def test_circular_norm_on_the_input_grid_is_not_always_a_bound():
    """Why the certified bound uses a grid L ≥ N + 2p: on the N grid the circular norm can be smaller."""
    found = False
    for seed in range(40):
        w = _weight(2, 2, 3, seed=seed)
        real = torch.linalg.matrix_norm(explicit_operator_matrix(lambda v: F.conv2d(v, w, padding=1), (2, 5, 5)), 2)
        if conv_operator_norm(w, 1, (5, 5)) < real * (1 - 1e-6):
            found = True
            break
    assert found


def test_conv_layer_module_and_grid():
    layer = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1).double()
    assert zero_padding_grid((9, 9), 1, 2) == (12, 12)
    power = conv_operator_norm_power(layer, input_size=(9, 9), tol=1e-10)
    assert conv_operator_norm_bound(layer, input_size=(9, 9)) >= power * (1 - 1e-9)


def test_gradient_of_the_norm():
    w = _weight(3, 2, 3, seed=4).requires_grad_(True)
    value = conv_operator_norm(w, 1, (6, 6))
    value.backward()
    eps = 1e-6
    direction = torch.randn_like(w)
    with torch.no_grad():
        plus = conv_operator_norm(w + eps * direction, 1, (6, 6))
        minus = conv_operator_norm(w - eps * direction, 1, (6, 6))
    assert ((plus - minus) / (2 * eps)).item() == pytest.approx((w.grad * direction).sum().item(), rel=1e-4)


def test_linear_norm():
    w = torch.randn(7, 5, dtype=torch.float64)
    assert linear_operator_norm(w).item() == pytest.approx(torch.linalg.svdvals(w)[0].item())
    with pytest.raises(ValueError, match="weight"):
        linear_operator_norm(torch.randn(3))


def test_bad_inputs():
    w = torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match="divisible by stride"):
        conv_operator_norm(w, 2, (7, 8))
    with pytest.raises(ValueError, match="weight"):
        conv_operator_norm(torch.randn(2, 3, 3), 1, (8, 8))
    with pytest.raises(ValueError, match="stride"):
        conv_operator_norm(w, 0, (8, 8))
    with pytest.raises(ValueError, match="larger than input_size"):
        conv_operator_norm(w, 1, (2, 2))
    with pytest.raises(ValueError, match="input_size"):
        conv_operator_norm(w, 1, "big")


def test_layer_bounds_of_the_cnn_bound_its_real_gain():
    torch.manual_seed(0)
    model = build("CNN").eval()
    table = layer_bounds(model, (1, 28, 28))
    assert list(table["type"][:3]) == ["Conv2d", "ReLU", "MaxPool2d"]
    assert table.attrs["product"] == pytest.approx(math.prod(table["bound"]))
    assert (table.loc[table["type"] == "MaxPool2d", "bound"] == 1.0).all()  # 2×2, stride 2: no overlap
    x = torch.rand(64, 1, 28, 28)
    r = 1e-3 * torch.randn_like(x)
    with torch.no_grad():
        gain = (model.features(x + r) - model.features(x)).flatten(1).norm(dim=1) / r.flatten(1).norm(dim=1)
    body_product = math.prod(table["bound"][: len(model.body)])
    assert gain.max().item() <= body_product


def test_overlapping_max_pool_bound_is_attained():
    """AlexNet's 3×3 stride-2 pools: one input can be the max of 4 windows, so the bound is 2."""
    import pandas as pd  # noqa: F401

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, bias=False), torch.nn.MaxPool2d(3, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    table = layer_bounds(model, (1, 9, 9), device="cpu")
    assert table.loc[1, "bound"] == pytest.approx(2.0)
    x = torch.zeros(1, 1, 9, 9)
    r = torch.zeros_like(x)
    r[0, 0, 2, 2] = 1.0  # the pixel shared by four windows
    gain = (model[1](x + r) - model[1](x)).norm() / r.norm()
    assert gain.item() == pytest.approx(2.0)


def test_layer_gains_never_exceed_the_bounds():
    from coursekit.spectral import layer_gains

    torch.manual_seed(1)
    model = build("CNN").eval()
    x = torch.rand(16, 1, 28, 28)
    x_perturbed = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    gains = layer_gains(model, x, x_perturbed)
    bounds = layer_bounds(model, (1, 28, 28))
    assert list(gains["layer"]) == list(bounds["layer"])
    assert (gains["max gain"] <= bounds["bound"] * (1 + 1e-5)).all()
    flat = gains.loc[gains["type"] == "Flatten", "max gain"]
    assert flat.to_numpy() == pytest.approx(1.0)


@pytest.mark.parametrize("size,count", [(20, 30), (48, 40), (70, 12)])
def test_lanczos_top_eigenvalue_matches_dense(size, count):
    """The GPU path (batched Lanczos) agrees with LAPACK; run here on the CPU."""
    from coursekit.spectral import _top_eigenvalues

    generator = torch.Generator().manual_seed(size)
    a = torch.randn(count, size, size + 5, dtype=torch.complex128, generator=generator)
    gram = a @ a.conj().transpose(1, 2)
    dense = torch.linalg.eigvalsh(gram)[:, -1]
    lanczos = _top_eigenvalues(gram, method="lanczos")
    assert torch.allclose(lanczos, dense, rtol=1e-6)


def test_lanczos_restarts_and_fallback():
    """Too few steps force restarts (and possibly the dense fallback); the answer stays exact."""
    from coursekit.spectral import _top_eigenvalues

    generator = torch.Generator().manual_seed(7)
    a = torch.randn(25, 60, 64, dtype=torch.complex128, generator=generator)
    gram = a @ a.conj().transpose(1, 2)
    dense = torch.linalg.eigvalsh(gram)[:, -1]
    for restarts in (0, 1, 5):
        got = _top_eigenvalues(gram, method="lanczos", steps=6, restarts=restarts)
        assert torch.allclose(got, dense, rtol=1e-6)
