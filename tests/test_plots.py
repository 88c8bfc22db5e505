"""Figure plumbing: what each panel shows, checked against a direct computation."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from coursekit.plots import perturbation_rows  # noqa: E402


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
    plt.close(fig)


def test_perturbation_rows_refuses_bad_input():
    model, x = _model(), torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="same non-empty shape"):
        perturbation_rows(x, x[:1], model)
    with pytest.raises(ValueError, match="magnify"):
        perturbation_rows(x, x, model, magnify=0)
