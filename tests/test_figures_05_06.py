"""Chapters 5 and 6's figure helpers describe what they show (issue 33 item 4)."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.figures import description, is_described  # noqa: E402
from coursekit.plots import circulant_spectrum, conv_spectra, distortion_cdf  # noqa: E402
from coursekit.pool_figures import pool_diagram, pool_gallery  # noqa: E402


def test_circulant_spectrum_names_both_norms():
    from scipy.linalg import circulant

    taps = np.array([0.3, -1.0, 0.5])
    fig = circulant_spectrum(taps, 8, stride=2)
    w = np.r_[taps, np.zeros(5)]
    norm = np.linalg.norm(circulant(w).T, 2)
    assert is_described(fig) and f"{norm:.3f}" in description(fig)
    plt.close(fig)


def test_conv_spectra_describes_each_layer():
    weight = torch.randn(2, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    fig = conv_spectra({"conv a": (weight, 8)})
    assert is_described(fig) and "conv a has 64 singular values" in description(fig)
    with pytest.raises(ValueError, match="at least one"):
        conv_spectra({})
    plt.close(fig)


def test_distortion_cdf_gives_each_median():
    attacks = {"m": SimpleNamespace(distortion=torch.tensor([0.1, 0.2, 0.3]))}
    fig = distortion_cdf(attacks)
    assert is_described(fig) and "m 0.200" in description(fig)
    plt.close(fig)


def test_pool_figures_are_described():
    fig = pool_diagram((0, 1), pool_size=100, refresh_every=10, pool_batch=5, batch_size=50, train_size=500, epochs=3)
    assert is_described(fig) and "100 examples" in description(fig)
    plt.close(fig)
    x = torch.rand(3, 1, 28, 28)
    fig = pool_gallery(x, torch.tensor([1, 2, 3]), torch.tensor([1, 0, 3]))
    assert "true label for 2 of the 3" in description(fig)
    plt.close(fig)
