"""The figures of chapters 4 and 5 draw what they say (checked against independent numbers)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from scipy.linalg import circulant

from conftest import attackable_model
from coursekit.plots import circulant_spectrum, transfer_example


def _bars(ax):
    return [p for p in ax.patches if isinstance(p, plt.Rectangle)]


def test_transfer_example_shows_each_models_prediction_and_probability():
    models = {"A": attackable_model(1), "B": attackable_model(2), "C": attackable_model(3)}
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 4, 4, generator=generator)
    x_adv = (x + 0.2 * torch.randn(1, 4, 4, generator=generator)).clamp(0, 1)
    label = int(models["A"](x[None]).argmax())
    fig = transfer_example(x, x_adv, label, models, source="A", magnify=5)
    bars_ax = fig.axes[3]
    bars = _bars(bars_ax)
    assert len(bars) == 3
    texts = [t.get_text() for t in bars_ax.texts]
    for i, model in enumerate(models.values()):  # bars from the top, in the models' order
        p = torch.softmax(model(x_adv[None]).double(), 1)[0]
        assert bars[i].get_width() == pytest.approx(p.max().item())
        fooled = int(p.argmax()) != label  # said in words too, not by colour alone
        assert texts[i] == f"→ {int(p.argmax())} ({100 * p.max().item():.0f}%)" + (", fooled" if fooled else "")
        assert np.allclose(
            bars[i].get_facecolor()[:3], plt.matplotlib.colors.to_rgb("tab:red" if fooled else "tab:gray")
        )
    assert [t.get_text() for t in bars_ax.get_yticklabels()] == ["A (source)", "B", "C"]
    perturbation = fig.axes[1].images[0].get_array()
    assert np.allclose(perturbation, (0.5 + 5 * (x_adv - x)).squeeze().numpy())
    plt.close(fig)
    with pytest.raises(ValueError, match="source"):
        transfer_example(x, x_adv, label, models, source="D")
    with pytest.raises(ValueError, match="same shape"):
        transfer_example(x, x_adv[:, :2], label, models, source="A")


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_circulant_spectrum_bars_are_the_singular_values(stride):
    taps = np.random.default_rng(stride).standard_normal(3)
    size = 16
    fig = circulant_spectrum(taps, size, stride)
    left, middle, right = fig.axes
    w = np.zeros(size)
    w[:3] = taps
    matrix = circulant(w).T
    x = np.random.default_rng(0).standard_normal(size)
    assert np.allclose(
        matrix @ x, [sum(taps[u] * x[(n + u) % size] for u in range(3)) for n in range(size)]
    )  # C is the layer
    assert np.allclose(left.images[0].get_array(), matrix)
    heights = np.array([b.get_height() for b in _bars(middle)])
    singular = np.linalg.svd(matrix, compute_uv=False)
    assert np.allclose(np.sort(heights), np.sort(singular))
    assert middle.lines[0].get_ydata()[0] == pytest.approx(singular.max())
    fold = size // stride
    stacks = np.zeros(fold)
    for bar in _bars(right):
        stacks[round(bar.get_x() + bar.get_width() / 2)] += bar.get_height()
    strided = np.linalg.svd(matrix[::stride], compute_uv=False)  # the stride as the explicit matrix
    assert np.allclose(np.sort(stacks), np.sort(strided**2))
    assert right.lines[0].get_ydata()[0] == pytest.approx(strided.max() ** 2)
    plt.close(fig)


def test_circulant_spectrum_refuses_bad_input_by_name():
    with pytest.raises(ValueError, match="stride"):
        circulant_spectrum([1.0, 2.0], 16, 3)
    with pytest.raises(ValueError, match="kernel"):
        circulant_spectrum(np.ones(20), 16, 2)
