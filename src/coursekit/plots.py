"""Figure plumbing for the chapters (so that chapter cells stay short)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _image(ax, image: torch.Tensor, title: str | None = None, *, vmin=0.0, vmax=1.0, cmap="gray") -> None:
    ax.imshow(image.detach().cpu().squeeze().numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)


def digit_grid(x: torch.Tensor, labels: Sequence | None = None, *, columns: int = 10, title: str | None = None):
    """A grid of digits x [N, 1, 28, 28], each titled with its label."""
    rows = int(np.ceil(len(x) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 1.0), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(x):
            _image(ax, x[i], None if labels is None else str(int(labels[i])))
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def direction_rows(x: torch.Tensor, index: torch.Tensor, row_titles: Sequence[str], *, title: str | None = None):
    """Rows of top-k images (the paper's Figures 1–2): index [R, k] into x."""
    rows, k = index.shape
    fig, axes = plt.subplots(rows, k, figsize=(k * 0.8, rows * 0.85), squeeze=False)
    for r in range(rows):
        for j in range(k):
            _image(axes[r, j], x[index[r, j]])
        axes[r, 0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def adversarial_comparison(x, x_adv, noisy, model, *, magnify: float = 10.0, columns: int = 6):
    """Figure 5/7 analogue: per column an original, its adversarial example, the difference
    magnified (grey = 0), and Gaussian noise of the same RMS; each titled with the prediction."""
    with torch.no_grad():
        device = next(model.parameters()).device
        preds = [model(t[:columns].to(device)).argmax(1).cpu() for t in (x, x_adv, noisy)]
    fig, axes = plt.subplots(4, columns, figsize=(columns * 1.1, 4.8), squeeze=False)
    names = ("original", "adversarial", f"difference ×{magnify:g}", "Gaussian, same RMS")
    for j in range(min(columns, len(x))):
        rms = (x_adv[j] - x[j]).pow(2).mean().sqrt().item()
        _image(axes[0, j], x[j], f"pred {preds[0][j].item()}")
        _image(axes[1, j], x_adv[j], f"pred {preds[1][j].item()}")
        _image(axes[2, j], 0.5 + magnify * (x_adv[j] - x[j]), f"RMS {rms:.3f}")
        _image(axes[3, j], noisy[j], f"pred {preds[2][j].item()}")
    for r, name in enumerate(names):
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def heatmap(table, *, title: str = "", fmt: str = "{:.0%}", cmap: str = "viridis"):
    """A heat map of a pandas DataFrame of rates, annotated."""
    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * values.shape[1] + 2, 0.5 * values.shape[0] + 1.5))
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), [str(i) for i in table.index], fontsize=8)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if values[i, j] < 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.03)
    ax.set_title(title)
    fig.tight_layout()
    return fig



def distortion_cdf(attacks, *, title: str = ""):
    """Cumulative distribution of the minimum distortion of each AttackResult in ``attacks``
    ({label: result}): the share of images fooled at or below each per-pixel RMS."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for name, attack in attacks.items():
        values = np.sort(attack.distortion.cpu().numpy())
        ax.plot(values, np.arange(1, len(values) + 1) / len(values), label=name)
    ax.set_xlabel("minimum distortion (per-pixel RMS)")
    ax.set_ylabel("share of test images fooled")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def _prediction(model, image: torch.Tensor) -> tuple[int, float]:
    """(label, probability) of ``model``'s answer for one image [1, 28, 28] (or [28, 28])."""
    device = next(model.parameters()).device
    with torch.no_grad():
        probabilities = torch.softmax(model(image.reshape(1, 1, 28, 28).to(device)), dim=1)[0]
    label = int(probabilities.argmax())
    return label, float(probabilities[label])


def adversarial_pair(model, x: torch.Tensor, x_adv: torch.Tensor, *, magnify: float | None = None):
    """One image, its perturbation and the adversarial image, side by side (the chapter-1 hook).

    x, x_adv: one image each, [1, 28, 28] (or [28, 28]) in [0, 1]. The first and last panels are
    titled with ``model``'s answer and its softmax probability; the middle one shows
    0.5 + magnify·(x_adv − x) (grey = no change), by default with ``magnify`` chosen so that the
    largest change is drawn black or white ("scaled"), and gives the perturbation's size as the
    paper measures it (RMS per pixel) and its largest pixel change.
    """
    if x.numel() != 784 or x_adv.numel() != 784:
        raise ValueError(f"x and x_adv must be one 28×28 image each, got shapes "
                         f"{tuple(x.shape)} and {tuple(x_adv.shape)}")
    r = (x_adv - x).detach().cpu().reshape(28, 28)
    largest = float(r.abs().max())
    heading = "perturbation, scaled" if magnify is None else f"perturbation ×{magnify:g}"
    if magnify is None:
        magnify = 0.5 / largest if largest > 0 else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.6))
    for ax, image, name in ((axes[0], x, "original"), (axes[2], x_adv, "adversarial")):
        label, probability = _prediction(model, image)
        _image(ax, image, f"{name}\npredicted {label} ({probability:.1%})")
    rms = float(r.pow(2).mean().sqrt())
    _image(axes[1], 0.5 + magnify * r, f"{heading}\nRMS {rms:.3f}, max {largest:.2f}")
    fig.tight_layout()
    return fig


def weight_templates(weights, *, title: str | None = None):
    """The weight vectors of softmax classifiers as 28×28 templates, one row per model.

    ``weights``: {row name: tensor [10, 784]} (e.g. an FC10 model's ``head[0].weight``). Each row
    has its own colour scale, symmetric about 0: red where ink raises the class's score, blue
    where it lowers it, white for 0. The scale ends at the row's 99th percentile of |w| (given in
    the row's label), so that a few extreme weights do not wash the rest out; larger ones are
    drawn in the end colours.
    """
    weights = {name: w.detach().cpu() for name, w in weights.items()}
    for name, w in weights.items():
        if tuple(w.shape) != (10, 784):
            raise ValueError(f"weights[{name!r}] must be [10, 784], got {tuple(w.shape)}")
    fig, axes = plt.subplots(len(weights), 10, figsize=(8.0, 0.95 * len(weights) + 0.4),
                             squeeze=False)
    for row, (name, w) in enumerate(weights.items()):
        scale = float(torch.quantile(w.abs().flatten().double(), 0.99))
        for digit in range(10):
            _image(axes[row, digit], w[digit].reshape(28, 28), str(digit) if row == 0 else None,
                   vmin=-scale, vmax=scale, cmap="RdBu_r")
        axes[row, 0].set_ylabel(f"{name}\n±{scale:.2g}", rotation=0, ha="right",
                                va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
