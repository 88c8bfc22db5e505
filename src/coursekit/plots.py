"""Figure plumbing for the chapters (so that chapter cells stay short)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ._checks import model_device
from .figures import describe

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

    from .attack import AttackResult


__all__ = [
    "digit_grid",
    "direction_rows",
    "adversarial_comparison",
    "heatmap",
    "heatmap_pair",
    "transfer_example",
    "circulant_spectrum",
    "conv_spectra",
    "distortion_cdf",
    "perturbation_rows",
    "adversarial_pair",
    "weight_templates",
]


def _image(
    ax: Axes,
    image: torch.Tensor,
    title: str | None = None,
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "gray",
) -> None:
    ax.imshow(image.detach().cpu().squeeze().numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=8)


def digit_grid(
    x: torch.Tensor,
    labels: torch.Tensor | Sequence[int] | None = None,
    *,
    columns: int = 10,
    title: str | None = None,
) -> Figure:
    """A grid of digits x [N, 1, 28, 28], each titled with its label.

    Used in chapter 1 (book/01_data_and_models.md).
    """
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
    shown = "" if labels is None else ", labelled " + " ".join(str(int(v)) for v in list(labels)[: len(x)])
    return describe(fig, f"{title + ': ' if title else ''}{len(x)} MNIST digits in a grid{shown}.")


def direction_rows(
    x: torch.Tensor,
    index: torch.Tensor,
    row_titles: Sequence[str],
    *,
    title: str | None = None,
    labels: torch.Tensor | None = None,
) -> Figure:
    """Rows of top-k images (the paper's Figures 1–2): index [R, k] into x. With ``labels`` [N]
    (the images' digits) the figure's description lists each row's digits.

    Used in chapter 2 (book/02_unit_semantics.md).
    """
    from .figures import describe

    rows, k = index.shape
    fig, axes = plt.subplots(rows, k, figsize=(k * 0.8, rows * 0.85), squeeze=False)
    for r in range(rows):
        for j in range(k):
            _image(axes[r, j], x[index[r, j]])
        axes[r, 0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    text = f"{title or 'Top images'}: {rows} rows of the {k} images that excite each direction most."
    if labels is not None:
        digits = "; ".join(
            f"{name}: {' '.join(str(int(d)) for d in labels[row].tolist())}" for name, row in zip(row_titles, index)
        )
        text += f" Their digits, row by row: {digits}."
    return describe(fig, text)


def adversarial_comparison(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    noisy: torch.Tensor,
    model: nn.Module,
    *,
    magnify: float = 10.0,
    columns: int = 6,
) -> Figure:
    """Figure 5/7 analogue: per column an original, its adversarial example, the difference
    magnified (grey = 0), and Gaussian noise of the same RMS; each titled with the prediction.

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    with torch.no_grad():
        device = model_device(model)
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
    from .figures import describe

    shown = min(columns, len(x))
    sizes = (x_adv[:shown] - x[:shown]).flatten(1).pow(2).mean(1).sqrt()  # [shown] RMS per pixel
    said = [" ".join(str(int(p)) for p in pred[:shown].tolist()) for pred in preds]
    return describe(
        fig,
        f"{shown} images in four rows: the originals (predicted {said[0]}), their adversarial "
        f"examples (predicted {said[1]}), the difference magnified {magnify:g} times (RMS per pixel "
        f"{sizes.min():.3f} to {sizes.max():.3f}) and Gaussian noise of the same RMS (predicted {said[2]}).",
    )


def _annotated(ax: Axes, table: pd.DataFrame, fmt: str, cmap: str, *, labels: bool = True):
    """Draw ``table``'s rates (0..1) on ``ax`` as a heat map, each cell annotated with its value."""
    values = table.to_numpy(dtype=float)
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), [str(i) for i in table.index] if labels else [], fontsize=8)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = "–" if np.isnan(values[i, j]) else fmt.format(values[i, j])
            dark = np.isnan(values[i, j]) or values[i, j] < 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    return im


def heatmap(table: pd.DataFrame, *, title: str = "", fmt: str = "{:.0%}", cmap: str = "viridis") -> Figure:
    """A heat map of a pandas DataFrame of rates in [0, 1], each cell annotated with its value."""
    from .figures import describe

    values = table.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 * values.shape[1] + 2, 0.5 * values.shape[0] + 1.5))
    im = _annotated(ax, table, fmt, cmap)
    fig.colorbar(im, ax=ax, fraction=0.03)
    ax.set_title(title)
    fig.tight_layout()
    cells = "; ".join(
        f"{row}: " + ", ".join(f"{col} {fmt.format(v)}" for col, v in zip(table.columns, values[i]))
        for i, row in enumerate(table.index)
    )
    return describe(
        fig, f"{title + ': ' if title else ''}a heat map of rates, rows by columns, each cell annotated. {cells}."
    )


def heatmap_pair(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    titles: tuple[str, str] = ("ours", "paper"),
    fmt: str = "{:.0%}",
    cmap: str = "viridis",
) -> Figure:
    """Two tables of rates in [0, 1] with the same rows and columns (e.g. a transfer matrix, ours
    and the paper's) as two annotated heat maps side by side on one colour scale; the
    description gives each one's mean off the diagonal (the cells whose row and column differ).

    Used in chapter 4 (book/04_transfer.md).
    """
    from .figures import describe

    if list(left.index) != list(right.index) or list(left.columns) != list(right.columns):
        raise ValueError("left and right must have the same rows and columns, in the same order")
    rows, columns = left.shape
    fig, axes = plt.subplots(1, 2, figsize=(2 * (0.75 * columns + 1) + 1.6, 0.45 * rows + 2.0))
    for ax, table, title in zip(axes, (left, right), titles):
        im = _annotated(ax, table, fmt, cmap, labels=ax is axes[0])
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=list(axes), fraction=0.025)
    means = []
    for table in (left, right):
        off = [table.iloc[i, j] for i in range(rows) for j in range(columns) if table.index[i] != table.columns[j]]
        means.append(float(np.nanmean(off)) if off else float("nan"))
    return describe(
        fig,
        f"Two heat maps, {rows} rows (sources) by {columns} columns (models asked), each cell annotated with "
        f"its rate: {titles[0]} (left; mean off the diagonal {means[0]:.0%}) and {titles[1]} (right; "
        f"{means[1]:.0%}).",
    )


def transfer_example(
    x: torch.Tensor,
    x_adv: torch.Tensor,
    label: int,
    models: Mapping[str, nn.Module],
    *,
    source: str,
    magnify: float | None = None,
) -> Figure:
    """One image, its adversarial example made for ``source``, and what every model predicts.

    x, x_adv: one image each, [1, H, W] or [H, W], in [0, 1]; label: x's true class; models:
    {name: classifier mapping [1, 1, H, W] to logits [1, K]} (``source`` among them). Left: x,
    the perturbation x_adv − x ×``magnify`` around grey (= 0; by default scaled so that its
    largest pixel reaches 0.45 from grey), x_adv. Right: one bar per model,
    the softmax probability of the class it predicts for x_adv, annotated "→ class (p%)", red
    and hatched where the class is wrong (the model is fooled), grey where it is ``label``.

    Used in chapter 4 (book/04_transfer.md).
    """
    import matplotlib.gridspec as gridspec

    if source not in models:
        raise ValueError(f"source {source!r} is not one of the models {list(models)}")
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have the same shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}")
    image = x_adv.detach().cpu().reshape(1, 1, *x.shape[-2:])
    names, classes, probabilities = list(models), [], []
    with torch.no_grad():
        for model in models.values():
            device = model_device(model)
            p = torch.softmax(model(image.to(device)).double(), 1)[0].cpu()
            classes.append(int(p.argmax()))
            probabilities.append(float(p.max()))
    fig = plt.figure(figsize=(9, 2.6))
    images = gridspec.GridSpec(1, 3, left=0.01, right=0.47, wspace=0.08, bottom=0.12, top=0.8)
    r = x_adv.detach().cpu() - x.detach().cpu()
    rms = r.pow(2).mean().sqrt().item()
    if magnify is None:
        magnify = 0.45 / max(r.abs().max().item(), 1e-12)
    _image(fig.add_subplot(images[0]), x, f"image (label {label})")
    _image(fig.add_subplot(images[1]), 0.5 + magnify * r, f"perturbation ×{magnify:.3g}")
    _image(fig.add_subplot(images[2]), x_adv, f"made for {source}\nRMS {rms:.3f}")
    _prediction_bars(fig.add_axes((0.66, 0.2, 0.32, 0.62)), names, classes, probabilities, label=label, source=source)
    from .figures import describe

    fooled = [n for n, c in zip(names, classes) if c != label]
    answers = "; ".join(f"{n} answers {c} ({100 * p:.0f}%)" for n, c, p in zip(names, classes, probabilities))
    return describe(
        fig,
        f"A digit labelled {label}, its perturbation and the adversarial image made for {source} "
        f"(RMS {rms:.3f}). {len(fooled)} of {len(names)} models are fooled: {answers}.",
    )


def _prediction_bars(
    ax: Axes, names: list[str], classes: list[int], probabilities: list[float], *, label: int, source: str
) -> None:
    """``transfer_example``'s right panel: per model (top to bottom in the order of ``names``) a bar
    of the probability of its predicted class, red where the class is not ``label``."""
    colours = ["tab:red" if c != label else "tab:gray" for c in classes]
    rows = np.arange(len(names))[::-1]
    bars = ax.barh(rows, probabilities, color=colours)
    for bar, c in zip(bars, classes):  # not colour alone: a fooled model's bar is hatched too
        bar.set_hatch("//" if c != label else "")
    ax.set_yticks(rows, [f"{n} (source)" if n == source else n for n in names], fontsize=8)
    for row, c, prob in zip(rows, classes, probabilities):
        inside = prob > 0.7  # long bars carry their label inside, in white
        ax.text(
            prob - 0.02 if inside else prob + 0.02,
            row,
            f"→ {c} ({100 * prob:.0f}%){', fooled' if c != label else ''}",
            va="center",
            ha="right" if inside else "left",
            fontsize=8,
            color="white" if inside else "black",
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of the predicted class", fontsize=8)
    ax.set_title("each model on the adversarial image (red, hatched: fooled)", fontsize=8)


def circulant_spectrum(kernel: ArrayLike, size: int, stride: int = 2) -> Figure:
    """The 1-D picture of chapter 5: a circular convolution's matrix, its spectrum, and stride.

    kernel: the taps w(0..k−1) (a 1-D array, k ≤ ``size``); the layer is y(n) = Σ_u w(u) x(n + u)
    with indices modulo ``size``, whose matrix C [size, size] is ``scipy.linalg.circulant(w).T``
    (w zero-padded to ``size``). Left: C. Middle: |ŵ(ξ)|, ξ = 0..size−1, the DFT of the padded
    kernel, which are C's singular values (the dashed line is C's largest, by SVD), each group
    ξ + l·M that folds together under ``stride`` (M = size/stride) in its own colour and hatch.
    Right: the strided layer C[::stride]: for each output frequency ξ < M, the stacked
    |ŵ(ξ + l·M)|²/stride, l = 0..stride−1, whose sum is that layer's squared singular value at ξ
    (the dashed line is its largest squared singular value, by SVD). The figure carries its
    description (``figures.describe``).

    Used in chapter 5 (book/05_spectral.md).
    """
    from scipy.linalg import circulant

    from .figures import describe

    taps = np.asarray(kernel, dtype=float)
    if taps.ndim != 1 or not 1 <= len(taps) <= size:
        raise ValueError(f"kernel must be a 1-D array of 1 to size={size} taps, got shape {taps.shape}")
    if not isinstance(stride, int) or stride < 1 or size % stride:
        raise ValueError(f"stride must be a positive int that divides size={size}, got {stride!r}")
    w = np.zeros(size)
    w[: len(taps)] = taps
    matrix = circulant(w).T
    spectrum = np.abs(np.fft.fft(w))
    fold = size // stride
    colours = plt.get_cmap("tab10")(np.arange(stride) % 10)
    hatches = ["", "//", "..", "xx", "\\\\", "oo"]
    fig, axes = plt.subplots(1, 3, figsize=(10, 3), gridspec_kw={"width_ratios": [1, 1.4, 1.4]})
    limit = np.abs(matrix).max()
    axes[0].imshow(matrix, cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[0].set_title(f"circulant matrix C ({size}×{size})", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    for group in range(stride):
        xi = np.arange(group * fold, (group + 1) * fold)
        style = {"color": colours[group], "hatch": hatches[group % len(hatches)], "edgecolor": "k", "lw": 0.4}
        axes[1].bar(xi, spectrum[xi], label=f"l = {group}: ξ = {xi[0]}..{xi[-1]}", **style)
    norm, strided = np.linalg.norm(matrix, 2), np.linalg.norm(matrix[::stride], 2)
    axes[1].axhline(norm, color="k", ls="--", lw=1, label="largest σ (SVD)")
    axes[1].set_xlabel("frequency ξ", fontsize=8)
    axes[1].set_title("|ŵ(ξ)| = singular values of C", fontsize=9)
    axes[1].set_ylim(0, 1.45 * spectrum.max())
    axes[1].legend(fontsize=7, loc="upper center", ncol=2)
    folded = spectrum.reshape(stride, fold) ** 2 / stride  # [l, ξ]: ŵ(ξ + l·M)
    bottom = np.zeros(fold)
    for group in range(stride):
        style = {"color": colours[group], "hatch": hatches[group % len(hatches)], "edgecolor": "k", "lw": 0.4}
        axes[2].bar(np.arange(fold), folded[group], bottom=bottom, **style)
        bottom += folded[group]
    axes[2].axhline(strided**2, color="k", ls="--", lw=1)
    axes[2].set_ylim(0, 1.2 * bottom.max())
    axes[2].set_xlabel(f"output frequency ξ (M = {fold})", fontsize=8)
    axes[2].set_title(f"stride {stride}: Σ_l |ŵ(ξ + l·M)|² / {stride} = σ² (stacked)", fontsize=9)
    for ax in axes[1:]:
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    fig.tight_layout()
    return describe(
        fig,
        f"Left: the {size}×{size} circulant matrix of a {len(taps)}-tap kernel, its taps on every row, "
        f"wrapping around. Middle: the {size} magnitudes |ŵ(ξ)|, which are the matrix's singular values; "
        f"the tallest touches the dashed line at {norm:.3f}, its largest singular value by SVD. Right: "
        f"with stride {stride}, each of the {fold} output frequencies stacks the {stride} input "
        f"frequencies that fold onto it (one hatch per group), divided by {stride}; the tallest stack "
        f"touches the dashed line at {strided**2:.3f}, the squared norm of the strided layer by SVD.",
    )


def conv_spectra(layers: Mapping[str, tuple[torch.Tensor, int]]) -> Figure:
    """Every singular value of each circular convolution in ``layers`` ({label: (weight
    [D, C, k, k], grid)}, stride 1 on grid × grid inputs), sorted, on a log scale, one line
    style and marker per layer; the figure carries its description.

    Used in chapter 5 (book/05_spectral.md).
    """
    from .figures import describe
    from .spectral import conv_singular_values

    if not layers:
        raise ValueError("layers must name at least one convolution")
    fig, ax = plt.subplots(figsize=(7, 3))
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
    said = []
    for i, (label, (weight, grid)) in enumerate(layers.items()):
        values = conv_singular_values(weight.detach().cpu(), 1, (grid, grid)).numpy()
        line, marker = styles[i % len(styles)]
        ax.semilogy(
            values, ls=line, marker=marker, markevery=max(1, len(values) // 8), label=f"{label}: {tuple(weight.shape)}"
        )
        said.append(f"{label} has {len(values):,} singular values from {values[0]:.2f} down to {values[-1]:.2g}")
    ax.set_xlabel("index (largest first)")
    ax.set_ylabel("singular value")
    ax.legend(fontsize=8)
    ax.set_title("Singular values of each convolution (circular, on its padded grid)", fontsize=9)
    return describe(fig, "Sorted singular values on a log scale: " + "; ".join(said) + ".")


def distortion_cdf(attacks: Mapping[str, AttackResult], *, title: str = "") -> Figure:
    """Cumulative distribution of the minimum distortion of each AttackResult in ``attacks``
    ({label: result}): the share of images fooled at or below each per-pixel RMS. One line style
    and marker per model besides its colour; the figure carries its description (each model's
    median distortion).

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    from .figures import describe

    fig, ax = plt.subplots(figsize=(7, 3.2))
    styles = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ("-", "v"), ("--", "P")]
    medians = []
    for i, (name, attack) in enumerate(attacks.items()):
        values = np.sort(attack.distortion.cpu().numpy())
        line, marker = styles[i % len(styles)]
        every = max(1, len(values) // 6)
        ax.plot(
            values, np.arange(1, len(values) + 1) / len(values), ls=line, marker=marker, markevery=every, label=name
        )
        medians.append(f"{name} {np.median(values):.3f}")
    ax.set_xlabel("minimum distortion (per-pixel RMS)")
    ax.set_ylabel("share of test images fooled")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return describe(
        fig,
        "The share of test images each model's attack fooled within each distortion, one curve per "
        "model (a curve further right needs larger perturbations); median distortions: " + ", ".join(medians) + ".",
    )


def perturbation_rows(x: torch.Tensor, x_adv: torch.Tensor, model: nn.Module, *, magnify: float = 5.0) -> Figure:
    """Per column one image: the original x, the perturbation x_adv − x magnified ``magnify``
    times around grey (0.5 = no change), and x_adv; the images titled with the model's label and
    its softmax probability. x, x_adv [N, 1, H, W] in [0, 1] (any device); one column each.

    Used in chapter 7a (book/07a_attacks_and_linearity.md).
    """
    if x.shape != x_adv.shape or len(x) == 0:
        raise ValueError(
            f"x and x_adv must have the same non-empty shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}"
        )
    if not magnify > 0:
        raise ValueError(f"magnify must be > 0, got {magnify!r}")
    device = model_device(model)
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
    from .figures import describe

    labels = [(int(probs[0][j].argmax()), int(probs[1][j].argmax())) for j in range(len(x))]
    changed = sum(a != b for a, b in labels)
    largest = float((x_adv - x).abs().max())
    return describe(
        fig,
        f"{len(x)} images in columns: the original (top), the change magnified {magnify:g} times around grey "
        f"(middle; largest pixel change {largest:.2f}) and the perturbed image (bottom), each titled with the "
        f"model's label and probability. The label changes on {changed} of {len(x)}: "
        + ", ".join(f"{a} → {b}" for a, b in labels)
        + ".",
    )


def _prediction(model: nn.Module, image: torch.Tensor) -> tuple[int, float]:
    """(label, probability) of ``model``'s answer for one image [1, 28, 28] (or [28, 28])."""
    device = model_device(model)
    with torch.no_grad():
        probabilities = torch.softmax(model(image.reshape(1, 1, 28, 28).to(device)), dim=1)[0]
    label = int(probabilities.argmax())
    return label, float(probabilities[label])


def adversarial_pair(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, *, magnify: float | None = None) -> Figure:
    """One image, its perturbation and the adversarial image, side by side (the chapter-1 hook).

    x, x_adv: one image each, [1, 28, 28] (or [28, 28]) in [0, 1]. The first and last panels are
    titled with ``model``'s answer and its softmax probability; the middle one shows
    0.5 + magnify·(x_adv − x) (grey = no change), by default with ``magnify`` chosen so that the
    largest change is drawn black or white ("scaled"), and gives the perturbation's size as the
    paper measures it (RMS per pixel) and its largest pixel change.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    if x.numel() != 784 or x_adv.numel() != 784:
        raise ValueError(
            f"x and x_adv must be one 28×28 image each, got shapes {tuple(x.shape)} and {tuple(x_adv.shape)}"
        )
    r = (x_adv - x).detach().cpu().reshape(28, 28)
    largest = float(r.abs().max())
    heading = "perturbation, scaled" if magnify is None else f"perturbation ×{magnify:g}"
    if magnify is None:
        magnify = 0.5 / largest if largest > 0 else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.6))
    said = []
    for ax, image, name in ((axes[0], x, "original"), (axes[2], x_adv, "adversarial")):
        label, probability = _prediction(model, image)
        _image(ax, image, f"{name}\npredicted {label} ({probability:.1%})")
        said.append(f"the {name} image, which the model labels {label} ({probability:.1%})")
    rms = float(r.pow(2).mean().sqrt())
    _image(axes[1], 0.5 + magnify * r, f"{heading}\nRMS {rms:.3f}, max {largest:.2f}")
    fig.tight_layout()
    scale = "scaled so that its largest change is black or white" if heading.endswith("scaled") else heading
    return describe(
        fig,
        f"Three panels: {said[0]}; the perturbation r = x_adv − x, grey where nothing changed and "
        f"{scale} (root-mean-square change per pixel {rms:.3f}, largest pixel change {largest:.2f} "
        f"on a 0-to-1 scale); {said[1]}.",
    )


def weight_templates(weights: Mapping[str, torch.Tensor], *, title: str | None = None) -> Figure:
    """The weight vectors of softmax classifiers as 28×28 templates, one row per model.

    ``weights``: {row name: tensor [10, 784]} (e.g. an FC10 model's ``head[0].weight``). Each row
    has its own colour scale, symmetric about 0: red where ink raises the class's score, blue
    where it lowers it, white for 0. The scale ends at the row's 99th percentile of |w| (given in
    the row's label), so that a few extreme weights do not wash the rest out; larger ones are
    drawn in the end colours.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    weights = {name: w.detach().cpu() for name, w in weights.items()}
    for name, w in weights.items():
        if tuple(w.shape) != (10, 784):
            raise ValueError(f"weights[{name!r}] must be [10, 784], got {tuple(w.shape)}")
    fig, axes = plt.subplots(len(weights), 10, figsize=(8.0, 0.95 * len(weights) + 0.4), squeeze=False)
    for row, (name, w) in enumerate(weights.items()):
        scale = float(torch.quantile(w.abs().flatten().double(), 0.99))
        for digit in range(10):
            _image(
                axes[row, digit],
                w[digit].reshape(28, 28),
                str(digit) if row == 0 else None,
                vmin=-scale,
                vmax=scale,
                cmap="RdBu_r",
            )
        axes[row, 0].set_ylabel(f"{name}\n±{scale:.2g}", rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return describe(
        fig,
        f"The weight vectors of {', '.join(weights)} drawn as 28×28 templates, one row per model and "
        "one column per digit 0-9: red where ink raises that digit's score, blue where it lowers it, "
        "white for 0, each row on its own scale (given beside it).",
    )
