"""The chapters' new figures draw what they say (checked against the data, not snapshots)."""

import matplotlib
import numpy as np
import pytest
import torch
from torch import nn

from coursekit.figures import description, is_described
from coursekit.plots import adversarial_pair, digit_grid, perturbation_rows, weight_templates

matplotlib.use("Agg")


def _softmax_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)).eval()


def test_adversarial_pair_titles_each_image_with_its_prediction_and_draws_the_perturbation():
    model = _softmax_model()
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(1, 28, 28, generator=generator)
    r = 0.05 * torch.randn(1, 28, 28, generator=generator)
    x_adv = (x + r).clamp(0, 1)
    fig = adversarial_pair(model, x, x_adv)
    axes = fig.axes
    assert len(axes) == 3
    for ax, image in ((axes[0], x), (axes[2], x_adv)):  # label and probability, computed apart
        p = torch.softmax(model(image[None]), 1)[0].detach()
        label = int(p.argmax())
        assert f"predicted {label} ({100 * p[label].item():.1f}%)" in ax.get_title()
    change = (x_adv - x)[0]
    magnify = 0.5 / change.abs().max().item()
    shown = axes[1].get_images()[0].get_array()
    np.testing.assert_allclose(shown, (0.5 + magnify * change).numpy(), rtol=1e-5, atol=1e-6)
    rms = change.pow(2).mean().sqrt().item()
    assert f"RMS {rms:.3f}" in axes[1].get_title()
    assert axes[1].get_title().startswith("perturbation, scaled")
    largest = change.abs().max().item()
    assert is_described(fig) and f"largest pixel change {largest:.2f}" in description(fig)
    matplotlib.pyplot.close(fig)
    fig = adversarial_pair(model, x, x_adv, magnify=10)
    np.testing.assert_allclose(
        fig.axes[1].get_images()[0].get_array(), (0.5 + 10 * change).numpy(), rtol=1e-5, atol=1e-6
    )
    assert fig.axes[1].get_title().startswith("perturbation ×10")
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="one 28×28 image"):
        adversarial_pair(model, torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28))


def test_weight_templates_draw_each_class_weight_on_a_symmetric_scale():
    w = {"a": _softmax_model(0)[1].weight, "b": 3 * _softmax_model(1)[1].weight}
    fig = weight_templates(w)
    axes = np.array(fig.axes).reshape(2, 10)
    for row, weights in enumerate(w.values()):
        scale = np.percentile(weights.detach().abs().numpy(), 99)
        for digit in range(10):
            image = axes[row, digit].get_images()[0]
            np.testing.assert_allclose(image.get_array(), weights[digit].detach().reshape(28, 28).numpy())
            assert image.get_clim() == pytest.approx((-scale, scale))
    assert [ax.get_title() for ax in axes[0]] == [str(d) for d in range(10)]
    assert is_described(fig) and "a, b drawn as 28×28 templates" in description(fig)
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match=r"weights\['x'\] must be \[10, 784\]"):
        weight_templates({"x": torch.zeros(10, 100)})


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()


def test_perturbation_rows_shows_labels_probabilities_and_the_change():
    model = _model()
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    x_adv = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    fig = perturbation_rows(x, x_adv, model, magnify=4)
    axes = np.array(fig.axes).reshape(3, 3)
    for row, images in ((0, x), (2, x_adv)):
        with torch.no_grad():
            p = torch.softmax(model(images), 1)
        for j in range(3):
            label, prob = int(p[j].argmax()), float(p[j].max())
            assert axes[row, j].get_title() == f"{label} ({prob:.0%})"
            shown = axes[row, j].get_images()[0].get_array()
            np.testing.assert_allclose(shown, images[j, 0].numpy(), rtol=0, atol=1e-7)
    for j in range(3):
        shown = axes[1, j].get_images()[0].get_array()
        np.testing.assert_allclose(shown, (0.5 + 4 * (x_adv[j, 0] - x[j, 0])).numpy(), atol=1e-6)
    assert [axes[r, 0].get_ylabel() for r in range(3)] == ["original", "change ×4", "adversarial"]
    from coursekit.figures import description, is_described

    largest = float((x_adv - x).abs().max())
    assert is_described(fig) and f"largest pixel change {largest:.2f}" in description(fig)
    matplotlib.pyplot.close(fig)


def test_perturbation_rows_refuses_bad_input():
    model, x = _model(), torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="same non-empty shape"):
        perturbation_rows(x, x[:1], model)
    with pytest.raises(ValueError, match="magnify"):
        perturbation_rows(x, x, model, magnify=0)


def test_digit_grid_titles_each_digit_and_says_what_it_shows():
    x, labels = torch.rand(12, 1, 28, 28), list(range(10)) + [3, 4]
    fig = digit_grid(x, labels, columns=5, title="Some digits")
    assert [ax.get_title() for ax in fig.axes[:12]] == [str(v) for v in labels]
    assert not any(ax.axison for ax in fig.axes[12:])  # the rest of the last row is empty
    assert description(fig) == "Some digits: 12 MNIST digits in a grid, labelled 0 1 2 3 4 5 6 7 8 9 3 4."
    matplotlib.pyplot.close(fig)
