import math

import pytest
import torch
import torch.nn.functional as F

from coursekit.models import build
from coursekit.spectral import (
    BOUND_MARGIN,
    circular_conv,
    conv_operator_norm,
    conv_operator_norm_bound,
    conv_operator_norm_power,
    conv_singular_values,
    explicit_operator_matrix,
    fourier_blocks,
    layer_bounds,
    linear_operator_norm,
    zero_padding_grid,
)

CASES = [  # (D, C, k, stride, N)
    (3, 2, 3, 1, 6),
    (4, 3, 3, 2, 8),
    (2, 3, 5, 3, 9),
    (5, 2, 4, 4, 8),
    (3, 5, 1, 1, 5),
    (6, 2, 3, 2, 6),
    (2, 4, 2, 4, 12),
    (4, 4, 5, 1, 7),
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


@pytest.mark.parametrize(
    "d,c,k,stride,n,padding",
    [(3, 2, 3, 1, 6, 1), (4, 3, 3, 2, 8, 1), (2, 3, 5, 3, 9, 2), (5, 2, 4, 4, 8, 0), (4, 2, 5, 1, 7, 2)],
)
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


def _explicit_norm(layer, shape):
    layer = layer.double()
    with torch.no_grad():
        matrix = explicit_operator_matrix(
            lambda v: torch.nn.functional.conv2d(
                torch.nn.functional.pad(v, (layer.padding[1],) * 2 + (layer.padding[0],) * 2, mode=layer.padding_mode)
                if layer.padding_mode != "zeros"
                else v,
                layer.weight,
                stride=layer.stride,
                padding=0 if layer.padding_mode != "zeros" else layer.padding,
            ),
            shape,
        )
    return torch.linalg.matrix_norm(matrix, 2).item()


@pytest.mark.parametrize(
    "k, stride, n, padding", [(3, 1, 6, 1), (5, 1, 8, 2), (3, 2, 8, 1), (4, 1, 6, 1), (3, 1, 7, 0)]
)
def test_circular_padding_bound_holds(k, stride, n, padding):
    """A circularly padded layer is (a subset of the rows of) the circular conv on the N grid."""
    worst = 0.0
    for seed in range(6):
        torch.manual_seed(seed)
        layer = torch.nn.Conv2d(2, 3, k, stride=stride, padding=padding, padding_mode="circular", bias=False)
        real = _explicit_norm(layer, (2, n, n))
        bound = conv_operator_norm_bound(layer.double(), input_size=(n, n)).item()
        assert bound >= real * (1 - 1e-9)
        worst = max(worst, real / bound)
    if 2 * padding == k - 1 and n % stride == 0:
        assert worst == pytest.approx(1.0, rel=1e-6)  # all N/Δ outputs kept: the bound is exact


@pytest.mark.parametrize("mode", ["reflect", "replicate"])
def test_padding_modes_that_repeat_pixels_are_refused(mode):
    layer = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    with pytest.raises(ValueError, match="padding_mode"):
        conv_operator_norm_bound(layer, input_size=(6, 6))
    with pytest.raises(ValueError, match="padding_mode"):
        layer_bounds(torch.nn.Sequential(layer), (2, 6, 6), device="cpu")


def test_reflect_padding_can_exceed_the_zero_padding_bound():
    """Why reflect padding is refused: its true norm can be above what the zeros formula gives."""
    worst = 0.0
    for seed in range(10):
        torch.manual_seed(seed)
        layer = torch.nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect", bias=False)
        zeros_formula = conv_operator_norm_bound(layer.weight.double(), 1, 1, (6, 6)).item()
        worst = max(worst, _explicit_norm(layer, (2, 6, 6)) / zeros_formula)
    assert worst > 1.05


def test_circular_padding_that_wraps_outputs_is_refused():
    layer = torch.nn.Conv2d(1, 1, 3, padding=2, padding_mode="circular")  # N + 2 outputs per side
    with pytest.raises(ValueError, match="wraps"):
        conv_operator_norm_bound(layer, input_size=(6, 6))


def test_average_pooling_bound_holds_and_no_longer_crashes():
    for pool, n in [
        (torch.nn.AvgPool2d(2), 6),
        (torch.nn.AvgPool2d(3, stride=2), 7),
        (torch.nn.AvgPool2d(3, stride=1, padding=1), 5),
        (torch.nn.AdaptiveAvgPool2d(2), 6),
    ]:
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1, bias=False), pool)
        with torch.no_grad():
            model[0].weight.fill_(1.0)
        table = layer_bounds(model, (1, n, n), device="cpu")
        matrix = explicit_operator_matrix(lambda v: pool(v.float()).double(), (1, n, n))
        real = torch.linalg.matrix_norm(matrix, 2).item()
        assert table.loc[1, "bound"] >= real * (1 - 1e-6)
    assert layer_bounds(
        torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.AvgPool2d(2)), (1, 4, 4), device="cpu"
    ).loc[1, "bound"] == pytest.approx(0.5)  # disjoint 2×2 means: exactly 1/2


class _Residual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        return x + self.linear(x)


class _Doubler(torch.nn.Module):
    def forward(self, x):
        return 2 * x


@pytest.mark.parametrize(
    "model, message",
    [
        (torch.nn.Sequential(torch.nn.Flatten(), _Residual()), "residual"),
        (torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4), torch.nn.Softplus()), "Softplus"),
        (torch.nn.Sequential(torch.nn.Flatten(), _Doubler(), torch.nn.Linear(4, 4)), "_Doubler"),
        (torch.nn.Sequential(torch.nn.Flatten()), None),
    ],
)
def test_layers_it_cannot_bound_are_refused(model, message):
    if message is None:  # no parameters at all: still works (Flatten is 1-Lipschitz)
        assert layer_bounds(model, (1, 2, 2)).attrs["product"] == 1.0
        return
    with pytest.raises(ValueError, match=message):
        layer_bounds(model, (1, 2, 2))


@pytest.mark.parametrize(
    "weight, error, message",
    [
        (torch.full((2, 2, 3, 3), float("nan")), ValueError, "NaN"),
        (torch.ones(2, 2, 3, 3, dtype=torch.int64), TypeError, "int64"),
    ],
)
def test_conv_norms_refuse_nan_and_integer_weights(weight, error, message):
    for function in (
        lambda w: conv_operator_norm(w, 1, (6, 6)),
        lambda w: conv_operator_norm_bound(w, 1, 1, (6, 6)),
        lambda w: conv_operator_norm_power(w, 1, 1, (6, 6)),
    ):
        with pytest.raises(error, match=message):
            function(weight)
    with pytest.raises(error, match=message):
        linear_operator_norm(weight[:, :, 0, 0])


def test_float16_weights_give_the_float32_norm():
    w = torch.randn(3, 2, 3, 3).half()
    assert conv_operator_norm(w, 1, (6, 6)).item() == pytest.approx(conv_operator_norm(w.float(), 1, (6, 6)).item())


def test_negative_padding_is_refused():
    w = torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        conv_operator_norm_bound(w, 1, -1, (6, 6))
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        conv_operator_norm_power(w, 1, -1, (6, 6))


# --- the certified norm: bounds that bracket the exact value -------------------------------------------


def test_polyphase_kernel_is_the_same_operator_on_a_permuted_input():
    from certified_norm import polyphase_weight

    w = _weight(3, 2, 5, seed=11)
    x = torch.randn(2, 2, 12, 12, dtype=torch.float64)
    stride = 3
    phases = x.view(2, 2, 4, stride, 4, stride).permute(0, 1, 3, 5, 2, 4).reshape(2, 2 * stride * stride, 4, 4)
    assert torch.allclose(circular_conv(x, w, stride), circular_conv(phases, polyphase_weight(w, stride), 1))


@pytest.mark.parametrize("d,c,k,stride,n", CASES)
def test_gram_blocks_have_the_fourier_block_spectra(d, c, k, stride, n):
    from certified_norm import gram_blocks

    w = _weight(d, c, k, seed=5)
    tops = torch.linalg.eigvalsh(gram_blocks(w, stride, (n, n)))[:, -1].sort().values
    fourier = (torch.linalg.matrix_norm(fourier_blocks(w, stride, (n, n)), ord=2) / stride).square().sort().values
    assert torch.allclose(tops, fourier, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d,c,k,stride,n", CASES + [(3, 2, 3, 1, (6, 8)), (4, 2, 2, 2, (6, 10))])
def test_certified_bounds_bracket_the_explicit_matrix_norm(d, c, k, stride, n):
    from certified_norm import conv_operator_norm_certified

    size = n if isinstance(n, tuple) else (n, n)
    w = _weight(d, c, k, seed=6)
    exact = torch.linalg.matrix_norm(explicit_operator_matrix(lambda v: circular_conv(v, w, stride), (c, *size)), 2)
    result = conv_operator_norm_certified(w, stride, size, tol=1e-6)
    assert result.lower <= exact.item() <= result.upper
    assert result.upper - result.lower <= 1e-6 * result.lower


@pytest.mark.parametrize("shape,stride,n", [((48, 64, 3, 3), 1, 13), ((16, 3, 11, 11), 4, 32), ((32, 16, 5, 5), 1, 15)])
def test_certified_bounds_bracket_the_eigensolver_on_alexnet_like_layers(shape, stride, n):
    from certified_norm import conv_operator_norm_certified

    w = (
        torch.randn(*shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        / math.prod(shape[1:]) ** 0.5
    )
    reference = conv_operator_norm(w, stride, (n, n)).item()  # LAPACK's eigensolver on every block
    result = conv_operator_norm_certified(w, stride, (n, n), tol=1e-4)
    assert result.lower <= reference * (1 + 1e-12) and reference <= result.upper * (1 + 1e-12)
    assert result.upper <= result.lower * (1 + 1e-4)
    assert result.blocks == (n // stride) * (n // stride // 2 + 1)


def test_a_poor_ranking_is_repaired_by_the_cholesky_check():
    """One candidate after one Lanczos step often misses the top block: the check must catch it."""
    from certified_norm import conv_operator_norm_certified

    rounds = []
    for seed in range(4):
        w = _weight(6, 4, 3, seed=20 + seed)
        exact = torch.linalg.matrix_norm(explicit_operator_matrix(lambda v: circular_conv(v, w, 1), (4, 7, 7)), 2)
        result = conv_operator_norm_certified(w, 1, (7, 7), tol=1e-6, candidates=1, screen_steps=1)
        assert result.lower <= exact.item() <= result.upper
        rounds.append(result.rounds)
    assert max(rounds) >= 2  # the refinement path ran


def test_the_cholesky_certificate_both_ways():
    from certified_norm import _certify_upper

    values = torch.tensor([1.0, 0.999, 0.5, 0.1], dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(4, 4, dtype=torch.complex128, generator=torch.Generator().manual_seed(0)))[0]
    gram = (basis * values) @ basis.conj().T
    gram = torch.stack([gram, gram * 0.5])
    assert _certify_upper(gram, 1 + 1e-7).tolist() == [True, True]
    assert _certify_upper(gram, 1 - 1e-7).tolist() == [False, True]
    assert _certify_upper(gram, 0.4).tolist() == [False, False]


def test_certified_norm_refuses_what_it_cannot_certify():
    from certified_norm import conv_operator_norm_certified
    from coursekit.spectral import NotCertifiedError

    w = _weight(3, 2, 3, seed=8)
    with pytest.raises(NotCertifiedError, match="could not certify"):
        conv_operator_norm_certified(w, 1, (6, 6), tol=1e-13)  # below the float64 rounding margin
    with pytest.raises(ValueError, match="tol"):
        conv_operator_norm_certified(w, 1, (6, 6), tol=0)
    with pytest.raises(ValueError, match="candidates"):
        conv_operator_norm_certified(w, 1, (6, 6), candidates=0)
    zero = conv_operator_norm_certified(torch.zeros(2, 2, 3, 3), 1, (6, 6))
    assert zero.lower == zero.upper == 0.0


@pytest.mark.parametrize("kind", ["linear", "conv", "batchnorm"])
def test_layer_bounds_are_upper_bounds_after_float32_rounding(kind):
    """Issue 24 item 10: computed in float32, a layer's bound came out up to 4e-7 below the norm
    of its (float32) weights, and the bounds are used as certificates (certified_radius). Each
    bound must be at least the norm of the layer's explicit matrix, computed in float64."""
    from coursekit.spectral import explicit_operator_matrix, layer_bounds

    for seed in range(25):
        torch.manual_seed(seed)
        if kind == "linear":
            layer, shape = torch.nn.Linear(50, 30), (50,)
            matrix = layer.weight.detach().double()
        elif kind == "conv":  # circular "same" padding: the bound is the exact norm, so tight
            layer, shape = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (2, 6, 6)
            weight = layer.weight.detach().double()
            matrix = explicit_operator_matrix(
                lambda v, w=weight: torch.nn.functional.conv2d(torch.nn.functional.pad(v, (1, 1, 1, 1), "circular"), w),
                shape,
            )
        else:
            layer, shape = torch.nn.BatchNorm1d(7), (7,)
            with torch.no_grad():
                layer.weight.uniform_(0.5, 2.0)
                layer.running_var.uniform_(0.1, 3.0)
            scale = layer.weight.detach().double() / (layer.running_var.double() + layer.eps).sqrt()
            matrix = torch.diag(scale)
        model = torch.nn.Sequential(layer).eval()
        bound = layer_bounds(model, shape)["bound"].iloc[0]
        exact = torch.linalg.matrix_norm(matrix, ord=2).item()
        assert bound >= exact, (seed, bound, exact)
        assert bound <= exact * (1 + 1e-8)  # and still the norm, to rounding


def _dense_norm_of_layer(layer: torch.nn.Conv2d, size: tuple[int, int]) -> float:
    """The largest singular value of the layer's dense matrix, built by applying the layer itself
    to every basis image (its bias removed: layer(e_j) − layer(0))."""
    matrix = explicit_operator_matrix(lambda v: layer(v) - layer(torch.zeros_like(v)), (layer.in_channels, *size))
    return torch.linalg.matrix_norm(matrix, 2).item()


CONV_LAYERS = {  # (the layer, input size): every setting of nn.Conv2d the power iteration must follow
    "dilation 2 (issue 31)": (lambda: torch.nn.Conv2d(2, 4, 3, dilation=2), (8, 8)),
    "groups 2 (issue 31)": (lambda: torch.nn.Conv2d(2, 4, 3, groups=2), (8, 8)),
    "stride (1, 2)": (lambda: torch.nn.Conv2d(2, 3, 3, stride=(1, 2), padding=1), (8, 7)),
    "stride (3, 2), padding (2, 0)": (lambda: torch.nn.Conv2d(3, 2, (3, 2), stride=(3, 2), padding=(2, 0)), (9, 8)),
    "groups 3, dilation (2, 1), stride 2": (
        lambda: torch.nn.Conv2d(3, 6, 3, groups=3, dilation=(2, 1), stride=2, padding=1),
        (9, 8),
    ),
    "padding same, dilation 2": (lambda: torch.nn.Conv2d(2, 2, 4, padding="same", dilation=2), (7, 7)),
    "padding valid": (lambda: torch.nn.Conv2d(2, 2, 3, padding="valid"), (6, 5)),
    "reflect": (lambda: torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (6, 6)),
    "replicate, stride 2": (lambda: torch.nn.Conv2d(2, 3, 3, padding=2, stride=2, padding_mode="replicate"), (7, 7)),
    "circular, same, dilation 2": (
        lambda: torch.nn.Conv2d(2, 2, 3, padding="same", dilation=2, padding_mode="circular"),
        (6, 6),
    ),
}


@pytest.mark.parametrize("name", CONV_LAYERS)
def test_power_iteration_measures_the_layer_itself(name):
    """Issue 31 item 3: conv_operator_norm_power(layer) ignored dilation, groups and unequal
    strides and reported 1.190 for a dilated layer whose dense matrix has norm 0.890, above the
    norm it is documented to approach from below. It now runs the layer's own convolution."""
    make, size = CONV_LAYERS[name]
    torch.manual_seed(0)
    layer = make().double()
    dense = _dense_norm_of_layer(layer, size)
    power = conv_operator_norm_power(layer, input_size=size, tol=1e-10).item()
    assert power <= dense * (1 + 1e-9)  # a lower bound
    assert power == pytest.approx(dense, rel=1e-4)
    as_float32 = conv_operator_norm_power(layer.float(), input_size=size, tol=1e-6).item()
    assert as_float32 == pytest.approx(dense, rel=1e-4)


def test_power_iteration_refuses_what_it_cannot_measure():
    dilated = torch.nn.Conv2d(2, 4, 3, dilation=2)
    with pytest.raises(ValueError, match="circular=True.*dilation"):
        conv_operator_norm_power(dilated, input_size=(8, 8), circular=True)
    with pytest.raises(ValueError, match="input_size"):
        conv_operator_norm_power(dilated, input_size=(4, 4))  # the dilated kernel spans 5 pixels
    with pytest.raises(ValueError, match="input_size"):
        conv_operator_norm_power(torch.nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect"), input_size=(3, 3))
    with pytest.raises(ValueError, match="padding"):
        conv_operator_norm_power(torch.randn(2, 2, 3, 3), 1, "full", (6, 6))
    with pytest.raises(ValueError, match="stride"):
        conv_operator_norm_power(torch.randn(2, 2, 3, 3), 0, 1, (6, 6))


def test_layer_bounds_of_a_float64_model():
    """Issue 31 item 5: a float64 model raised a dtype error (the traced input was float32). The
    bounds are computed in float64 from the weights either way, so they equal the float32
    model's; the linear layer's is its largest singular value."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1),
        torch.nn.BatchNorm2d(3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(48, 5),
    ).eval()
    single = layer_bounds(model, (1, 8, 8))
    double = layer_bounds(model.double(), (1, 8, 8))
    assert double["bound"].tolist() == single["bound"].tolist()
    largest = torch.linalg.matrix_norm(model[5].weight.detach().double(), 2).item()
    assert double["bound"].iloc[-1] == pytest.approx(largest * (1 + BOUND_MARGIN), rel=1e-12)
