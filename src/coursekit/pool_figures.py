"""Figures of chapter 6: what an adversarial pool holds, when it changes, how it is used.

``pool_diagram`` draws the training loop of ``coursekit.adversarial_training`` as boxes and
arrows (the network, the training set, one pool per layer, the attack that refreshes them) above
a time line of the training steps (the first epoch without a pool, the pool made, its
refreshes). ``pool_gallery`` shows a few pool images with their true labels and what a model
answers for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ._checks import check_int
from .figures import describe

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = ["BOX", "COLOURS", "HEIGHT", "LEVEL", "pool_diagram", "pool_gallery"]

BOX = {"boxstyle": "round,pad=0.02,rounding_size=0.12", "linewidth": 1.0}
COLOURS = {"network": "#dbe9f6", "data": "#e8e8e8", "pool": "#fde2c8", "attack": "#f7c6c7"}
LEVEL = 1.3  # vertical distance between two layers of the drawn network
HEIGHT = 0.78  # height of a box


def _box(ax, x0: float, y0: float, width: float, text: str, kind: str, height: float = HEIGHT):
    """A rounded box with its lower left corner at (x0, y0) and ``text`` centred in it."""
    ax.add_patch(FancyBboxPatch((x0, y0), width, height, facecolor=COLOURS[kind], edgecolor="0.3", gid=kind, **BOX))  # type: ignore[arg-type]
    ax.text(
        x0 + width / 2, y0 + height / 2, text, ha="center", va="center", fontsize=7.5 if text.count("\n") >= 2 else 8
    )


def _arrow(ax, start, end, text: str = "", *, offset=(0.0, 0.12), colour="0.25"):
    """An arrow from ``start`` to ``end`` (data coordinates), labelled at its middle."""
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, color=colour, linewidth=1.1, gid="arrow")
    )
    if text:
        middle = ((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1])
        ax.text(*middle, text, ha="center", va="bottom", fontsize=7, color=colour)


def _check_numbers(**numbers) -> None:
    for name, value in numbers.items():
        check_int(name, value)


def _draw_network(ax, hidden: Sequence[int], classes: int, batch_size: int, train_size: int):
    """The network column (input, hidden layers, softmax) and the training set feeding it."""
    names = [f"input x ({28 * 28} pixels)"]
    names += [f"hidden layer {k}: φ{k}(x)\n{units} sigmoid units" for k, units in enumerate(hidden, 1)]
    names.append(f"softmax ({classes} classes)\nloss with the true labels")
    for k, name in enumerate(names):
        _box(ax, 4.4, k * LEVEL, 3.0, name, "network")
        if k:
            _arrow(ax, (5.9, (k - 1) * LEVEL + HEIGHT), (5.9, k * LEVEL))
    _box(ax, 0.2, 0.0, 2.4, f"training set\n{train_size:,} images", "data")
    _arrow(ax, (2.6, HEIGHT / 2), (4.4, HEIGHT / 2), f"{batch_size} images\nper step")


def _draw_pools(
    ax, layers: Sequence[int], pool_size: int, pool_batch: int, replaced: int, refresh_every: int, attack: str
):
    """One pool box per layer, its arrow into the network, and the attack that refreshes it."""
    for k in layers:
        y0 = k * LEVEL
        held = f"{pool_size} images x + r" if k == 0 else f"{pool_size} vectors φ{k}(x) + r"
        where = "input pool" if k == 0 else f"pool at hidden layer {k}"
        _box(ax, 9.0, y0, 2.7, f"{where}\n{held}\nwith their true labels", "pool")
        into = "as input" if k == 0 else f"above layer {k}"
        _arrow(
            ax, (9.0, y0 + HEIGHT / 2), (7.4, y0 + HEIGHT / 2), f"+{pool_batch} per step\n{into}", offset=(0.0, 0.05)
        )
    top = max(layers) * LEVEL + HEIGHT
    _box(
        ax,
        13.0,
        0.0,
        2.0,
        f"attack the\ncurrent model\n({attack}):\nrandom training\nimages, random\nwrong labels",
        "attack",
        height=max(top, 2.2),
    )
    for k in layers:
        y = k * LEVEL + HEIGHT / 2
        _arrow(
            ax,
            (13.0, y),
            (11.7, y),
            f"every {refresh_every}\nsteps: {replaced} new",
            offset=(0.0, 0.05),
            colour="#a03030",
        )


def _draw_timeline(ax, steps_per_epoch: int, epochs: int, refresh_steps: Sequence[int]):
    """Training steps: the first epoch without a pool, the pool made, each refresh."""
    total = steps_per_epoch * epochs
    ax.axvspan(0, steps_per_epoch, color=COLOURS["data"], label="epoch 1: images only")
    ax.axvline(steps_per_epoch, color="#a03030", linewidth=2.0, label="pool made")
    later = [s for s in refresh_steps if s > steps_per_epoch]
    ax.plot(later, [0.5] * len(later), "|", color="#a03030", markersize=12, label="refresh", gid="refresh")
    ax.set_xlim(0, total)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel(f"training step (minibatch); {epochs} epochs of {steps_per_epoch} steps", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.9), ncol=3, frameon=False)


def pool_diagram(
    layers: Sequence[int] = (0,),
    *,
    hidden: Sequence[int] = (100, 100),
    classes: int = 10,
    pool_size: int = 500,
    refresh_fraction: float = 0.2,
    refresh_every: int = 300,
    pool_batch: int = 32,
    batch_size: int = 128,
    train_size: int = 60_000,
    epochs: int = 12,
    refresh_steps: Sequence[int] | None = None,
    attack: str = "penalty method",
) -> Figure:
    """Boxes and arrows of adversarial-pool training, above a time line of the steps.

    ``layers``: the pools drawn (0: the input, k ≥ 1: the k-th of the ``hidden`` layers, whose
    sizes are given); the other numbers are those of ``adversarial_training.PoolSettings`` and
    the training (``batch_size`` images per step, ``train_size`` images, ``epochs``).
    ``refresh_steps``: the steps at which the pool was made and refreshed (a pool's log);
    default: the schedule (made after one epoch, then every ``refresh_every`` steps).
    Returns the figure.

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    _check_numbers(
        pool_size=pool_size,
        refresh_every=refresh_every,
        pool_batch=pool_batch,
        batch_size=batch_size,
        train_size=train_size,
        epochs=epochs,
        classes=classes,
    )
    layers = tuple(layers)
    if not layers or any(not isinstance(k, int) or not 0 <= k <= len(hidden) for k in layers):
        raise ValueError(f"layers must be ints in 0..{len(hidden)} (the input and the hidden layers), got {layers!r}")
    if not 0 < refresh_fraction <= 1:
        raise ValueError(f"refresh_fraction must be in (0, 1], got {refresh_fraction!r}")
    steps_per_epoch = -(-train_size // batch_size)
    if refresh_steps is None:
        refresh_steps = range(steps_per_epoch, steps_per_epoch * epochs, refresh_every)
    fig = plt.figure(figsize=(10.5, 0.9 * len(hidden) + 4.0))
    ax = fig.add_axes((0.0, 0.25, 1.0, 0.68))
    _draw_network(ax, hidden, classes, batch_size, train_size)
    replaced = max(1, round(refresh_fraction * pool_size))
    _draw_pools(ax, layers, pool_size, pool_batch, replaced, refresh_every, attack)
    ax.set_xlim(0, 15.1)
    mixed = batch_size + pool_batch * len(layers)
    ax.set_title(
        f"One training step: {batch_size} images + {pool_batch} from each pool = {mixed} examples, one loss", fontsize=9
    )
    ax.set_ylim(-0.2, (len(hidden) + 1) * LEVEL + HEIGHT + 0.2)
    ax.axis("off")
    timeline = fig.add_axes((0.06, 0.13, 0.9, 0.06))
    steps = list(refresh_steps)
    _draw_timeline(timeline, steps_per_epoch, epochs, steps)
    where = ", ".join("the input" if k == 0 else f"hidden layer {k}" for k in layers)
    return describe(
        fig,
        f"Adversarial-pool training drawn as boxes: a network with hidden layers of {', '.join(map(str, hidden))} "
        f"units; a pool at {where}, each of {pool_size} examples, {replaced} of them replaced every "
        f"{refresh_every} steps by new adversarial examples; every step trains on {batch_size} images plus "
        f"{pool_batch} examples of each pool ({mixed} examples, one loss). Below, a time line of {epochs} "
        f"epochs of {steps_per_epoch} steps: no pool in the first epoch, the pool made at step "
        f"{steps[0] if steps else '-'}, then {max(0, len(steps) - 1)} refreshes.",
    )


def pool_gallery(
    x: torch.Tensor, true: torch.Tensor, predicted: torch.Tensor, *, columns: int = 8, title: str | None = None
) -> Figure:
    """Pool images x [N, 1, 28, 28] in [0, 1] (the first ``columns``), each titled with its
    true label and the label a model gives it (``predicted`` [N]); returns the figure.

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    if not len(x) == len(true) == len(predicted):
        raise ValueError(
            f"x, true and predicted must have the same length, got {len(x)}, {len(true)}, {len(predicted)}"
        )
    count = min(columns, len(x))
    if count == 0:
        raise ValueError("x is empty: no pool image to show")
    fig, axes = plt.subplots(1, count, figsize=(1.1 * count, 1.5), squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.imshow(x[j].detach().cpu().squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"true {int(true[j])}\nsays {int(predicted[j])}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    agree = int((true[:count].cpu() == predicted[:count].cpu()).sum())
    return describe(
        fig,
        f"{count} pool images, each titled with its true label and the label the network gives it; "
        f"the network answers the true label for {agree} of the {count}.",
    )
