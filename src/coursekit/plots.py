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


def perturbation_rows(x: torch.Tensor, x_adv: torch.Tensor, model, *, magnify: float = 5.0):
    """Per column one image: the original x, the perturbation x_adv − x magnified ``magnify``
    times around grey (0.5 = no change), and x_adv; the images titled with the model's label and
    its softmax probability. x, x_adv [N, 1, H, W] in [0, 1] (any device); one column each."""
    if x.shape != x_adv.shape or len(x) == 0:
        raise ValueError(f"x and x_adv must have the same non-empty shape, got {tuple(x.shape)} "
                         f"and {tuple(x_adv.shape)}")
    if not magnify > 0:
        raise ValueError(f"magnify must be > 0, got {magnify!r}")
    device = next(model.parameters()).device
    with torch.no_grad():
        probs = [torch.softmax(model(t.to(device)), 1).cpu() for t in (x, x_adv)]
    x, x_adv = x.detach().cpu(), x_adv.detach().cpu()
    fig, axes = plt.subplots(3, len(x), figsize=(1.1 * len(x) + 0.6, 3.9), squeeze=False)
    for j in range(len(x)):
        for row, image, p in ((0, x[j], probs[0][j]), (2, x_adv[j], probs[1][j])):
            _image(axes[row, j], image, f"{p.argmax().item()} ({p.max().item():.0%})")
        _image(axes[1, j], 0.5 + magnify * (x_adv[j] - x[j]))
    names = ("original", f"change ×{magnify:g}", "adversarial")
    for row, name in enumerate(names):
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig
