"""The c and ε sliders, for the live notebook and for the static site alike.

A slider's grid is small and precomputed (the c grid of ``penalty_path``, the ε grid of
``epsilon_curves``), so every frame is drawn once, as a PNG, when the cell runs
(``render_frames``). A ``FrameSlider`` holds those frames and shows them two ways from the same
bytes:

- in Jupyter and Colab, an ipywidgets ``SelectionSlider`` that swaps an ``Image`` widget's
  value (no redrawing, so it is instant; only APIs that ipywidgets 7.7.1, Colab's version, has too);
- on the built site, where there is no kernel, an HTML range input and a dozen lines of
  JavaScript that show one of the frames, all embedded in the page as ``data:`` PNGs.

Why not ipywidgets' embedded widget state? Its links run in the browser only between widget
properties (``jslink``), and there is no property link from a slider index to an image; the
html-manager it needs is also loaded from a CDN, and the site must work offline. A plain range
input needs no library, and with JavaScript off the page still shows the default frame as an
ordinary image. Both representations travel in one output (``_repr_mimebundle_``): notebook
front ends pick the widget, the book (``nb_mime_priority_overrides`` in ``_config.yml``) the HTML.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import numbers
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from ._checks import check_int, model_device
from .attack import distortion, solve_penalty

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    import pandas as pd
    from matplotlib.figure import Figure
    from torch import nn


__all__ = [
    "FRAME_COLORS",
    "FRAME_DPI",
    "c_slider",
    "epsilon_figure",
    "epsilon_slider",
    "FrameSlider",
    "nearest_index",
    "penalty_figure",
    "penalty_path",
    "PenaltyPath",
    "plot_epsilon_curves",
    "plot_penalty_solution",
    "render_frames",
    "epsilon_description",
    "penalty_description",
]


@dataclass
class PenaltyPath:
    """The penalty problem's solution for one image and target over a grid of c values."""

    x: torch.Tensor  # [1, 1, 28, 28]
    target: int
    c_values: np.ndarray  # [G]
    solutions: torch.Tensor  # [G, 1, 28, 28]
    probabilities: torch.Tensor  # [G, 10]
    distortion: np.ndarray  # [G]


def penalty_path(model: nn.Module, x: torch.Tensor, target: int, c_values: Sequence[float] | np.ndarray) -> PenaltyPath:
    """Solve min c·|r|² + loss_f(x + r, target) for every c in ``c_values``, in one batched call.

    ``x``: one image [C, H, W] or [1, C, H, W] in [0, 1]; ``target``: a class index (an int);
    ``c_values``: a non-empty 1-D sequence of positive weights.

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise TypeError(f"target must be an int class index, got {target!r}")
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or (x.dim() == 4 and len(x) != 1):
        raise ValueError(f"x must be one image [C, H, W] or [1, C, H, W], got shape {tuple(getattr(x, 'shape', ()))}")
    c = torch.as_tensor(np.asarray(c_values, dtype=np.float32))
    if c.dim() != 1 or len(c) == 0 or not bool(torch.isfinite(c).all() and (c > 0).all()):
        raise ValueError(f"c_values must be a non-empty 1-D sequence of positive numbers, got {c_values!r}")
    xs = x.reshape(1, *x.shape[-3:]).expand(len(c), *x.shape[-3:]).contiguous()
    targets = torch.full((len(c),), int(target), dtype=torch.long)
    solutions = solve_penalty(model, xs, targets, c).cpu()
    with torch.no_grad():
        device = model_device(model)
        probabilities = torch.softmax(model(solutions.to(device)), 1).cpu()
    return PenaltyPath(
        x=xs[:1].cpu(),
        target=int(target),
        c_values=np.asarray(c_values, dtype=float),
        solutions=solutions,
        probabilities=probabilities,
        distortion=distortion(xs.cpu(), solutions).numpy(),
    )


def penalty_figure(path: PenaltyPath) -> tuple[Figure, Callable[[int], None]]:
    """The figure of ``plot_penalty_solution`` and ``update(index)``, which redraws it in place
    for the index-th c (cheap: no new axes, no new layout)."""
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), gridspec_kw={"width_ratios": [1, 1, 1.6, 2]})
    axes[0].imshow(path.x[0].squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("x", fontsize=9)
    solution = axes[1].imshow(path.solutions[0].squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
    for ax in axes[:2]:
        ax.axis("off")
    colors = ["tab:red" if k == path.target else "tab:gray" for k in range(10)]
    bars = axes[2].bar(range(10), path.probabilities[0].numpy(), color=colors)
    bars[path.target].set_hatch("//")  # the target is marked by a pattern too, not by colour alone
    axes[2].set_xticks(range(10), [f"{k}\ntarget" if k == path.target else str(k) for k in range(10)], fontsize=8)
    axes[2].set_ylim(0, 1)
    axes[2].set_title(f"probabilities (target {path.target}: red, hatched)", fontsize=9)
    axes[3].semilogx(path.c_values, path.distortion)
    axes[3].set_xlabel("c (weight on |r|²)")
    twin = axes[3].twinx()
    twin.semilogx(path.c_values, path.probabilities[:, path.target].numpy(), color="tab:red", linestyle="--")
    twin.set_ylim(0, 1)
    twin.set_ylabel("p(target), dashed", color="tab:red")
    axes[3].set_ylabel("distortion, solid")
    marker = axes[3].axvline(path.c_values[0], color="k", linestyle=":")

    def update(index: int) -> None:
        c, probs = path.c_values[index], path.probabilities[index].numpy()
        solution.set_data(path.solutions[index].squeeze().numpy())
        axes[1].set_title(f"x + r, f = {int(probs.argmax())}", fontsize=9)
        for bar, p in zip(bars, probs):
            bar.set_height(p)
        marker.set_xdata([c, c])
        axes[3].set_title(f"c = {c:.3g}: distortion {path.distortion[index]:.4f}", fontsize=9)

    update(0)
    fig.tight_layout()
    return fig, update


def penalty_description(path: PenaltyPath, index: int) -> str:
    """The text description (alt text) of the penalty figure at the index-th c, with its numbers."""
    c, probs = path.c_values[index], path.probabilities[index].numpy()
    target_p = path.probabilities[:, path.target].numpy()
    return (
        f"The penalty attack at c = {c:.3g}: the image x beside x + r, which the model classifies as "
        f"{int(probs.argmax())} (target {path.target}, probability {probs[path.target]:.2f}); distortion "
        f"{path.distortion[index]:.4f}. Along the grid from c = {path.c_values[0]:.3g} to "
        f"{path.c_values[-1]:.3g}, the distortion goes from {path.distortion[0]:.4f} to "
        f"{path.distortion[-1]:.4f} and the target's probability from {target_p[0]:.2f} to {target_p[-1]:.2f}."
    )


def plot_penalty_solution(path: PenaltyPath, index: int) -> Figure:
    """x + r for the index-th c, its class probabilities and distortion, and the distortion
    and target probability along the whole c grid (described: :func:`penalty_description`)."""
    from .figures import describe

    _check_index(index, len(path.c_values))
    fig, update = penalty_figure(path)
    update(index)
    return describe(fig, penalty_description(path, index))


def epsilon_figure(curves: pd.DataFrame) -> tuple[Figure, Callable[[int], None]]:
    """The figure of ``plot_epsilon_curves`` and ``update(index)``, which redraws it in place
    for the index-th ε of the grid."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    targets = curves["adversarial direction"].columns
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, name in zip(colors, targets):
        axes[0].plot(curves.index, curves[("adversarial direction", name)], color=color, label=f"{name}: adversarial")
        axes[0].plot(curves.index, curves[("Gaussian noise", name)], color=color, linestyle="--")
    marker = axes[0].axvline(curves.index[0], color="k", linestyle=":")
    axes[0].set_xlabel("ε (per-pixel RMS of the perturbation)")
    axes[0].set_ylabel("error rate")
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    axes[0].set_title("solid: adversarial direction, dashed: Gaussian noise", fontsize=9)
    width, positions = 0.38, np.arange(len(targets))
    groups = {  # told apart by a pattern as well as by colour
        kind: axes[1].bar(positions + shift, np.zeros(len(targets)), width, label=label, hatch=hatch)
        for kind, shift, label, hatch in (
            ("adversarial direction", -width / 2, "adversarial", ""),
            ("Gaussian noise", width / 2, "Gaussian (hatched)", "//"),
        )
    }
    axes[1].set_xticks(positions, targets, rotation=20, fontsize=8)
    axes[1].set_ylim(0, 1)
    axes[1].legend(fontsize=8)

    def update(index: int) -> None:
        epsilon = curves.index[index]
        marker.set_xdata([epsilon, epsilon])
        for kind, bars in groups.items():
            for bar, target in zip(bars, targets):
                bar.set_height(curves.iloc[index][(kind, target)])
        axes[1].set_title(f"ε = {epsilon:.3g}", fontsize=9)

    update(0)
    fig.tight_layout()
    return fig, update


def epsilon_description(curves: pd.DataFrame, index: int) -> str:
    """The text description (alt text) of the ε figure at the index-th ε, with its numbers."""
    epsilon, row = curves.index[index], curves.iloc[index]
    targets = curves["adversarial direction"].columns
    adversarial, noise = row["adversarial direction"], row["Gaussian noise"]
    errors = "; ".join(f"{t}: {adversarial[t]:.0%} adversarial, {noise[t]:.0%} noise" for t in targets)
    return (
        f"Error rate against ε (from {curves.index[0]:.3g} to {curves.index[-1]:.3g}) of each model under "
        f"perturbations along the adversarial direction (solid lines) and of Gaussian noise of the same size "
        f"(dashed), and the errors at ε = {epsilon:.3g} as bars: {errors}."
    )


def plot_epsilon_curves(curves: pd.DataFrame, epsilon: float) -> Figure:
    """Error vs ε for the adversarial direction (solid) and Gaussian noise (dashed) on each
    target, and the errors at ``epsilon`` (the nearest grid value) as bars (described:
    :func:`epsilon_description`).

    ``curves``: ``epsilon_curves``' table: index ε ascending, columns (kind, target) with kind
    "adversarial direction" or "Gaussian noise", error rates in [0, 1]."""
    from .figures import describe

    fig, update = epsilon_figure(curves)
    index = nearest_index(curves.index, epsilon)
    update(index)
    return describe(fig, epsilon_description(curves, index))


def nearest_index(values: Sequence[float], value: float) -> int:
    """The index of the grid value nearest to ``value``."""
    grid = np.asarray(values, dtype=float)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"values must be a non-empty 1-d grid, got shape {grid.shape}")
    return int(np.abs(grid - float(value)).argmin())


def _check_index(index, count: int) -> None:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
        raise ValueError(f"index must be an int in 0..{count - 1}, got {index!r}")


FRAME_DPI = 72  # 12-inch figures become 864-px frames, about the width of the page's column
FRAME_COLORS = 128  # palette size; line plots and grey digits look the same with 128 colours


def render_frames(
    figure: Figure, update: Callable[[int], None], count: int, dpi: int = FRAME_DPI, colors: int | None = FRAME_COLORS
) -> list[bytes]:
    """PNG bytes of ``figure`` after ``update(i)``, for ``i`` in ``range(count)``; closes it.

    ``colors`` (2-256) quantises each frame to a palette PNG, about 3 times smaller than full
    colour; ``None`` keeps full colour. A page embeds every frame, so this sets its weight.
    """
    check_int("count", count)
    if colors is not None and not 2 <= colors <= 256:
        raise ValueError(f"colors must be in 2..256 or None, got {colors!r}")
    from PIL import Image

    frames = []
    try:
        for index in range(count):
            update(index)
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=dpi)
            if colors is not None:
                image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
                buffer = io.BytesIO()
                image.quantize(colors=colors).save(buffer, format="png", optimize=True)
            frames.append(buffer.getvalue())
    finally:
        plt.close(figure)
    return frames


_ids = itertools.count()

# The static page's slider: show the frame the range input points at (ES5, no library).
_SCRIPT = """(function () {
  var root = document.getElementById("%s");
  var input = root.querySelector("input[type=range]");
  var value = root.querySelector("output");
  var frames = root.querySelectorAll("img");
  function show() {
    var k = Number(input.value);
    for (var i = 0; i < frames.length; i++) frames[i].style.display = i === k ? "" : "none";
    value.textContent = frames[k].getAttribute("data-label");
    input.setAttribute("aria-valuetext", value.textContent);
  }
  input.addEventListener("input", show);
  input.addEventListener("change", show);
  root.querySelector(".coursekit-slider-control").style.display = "";
  show();
})();"""


def _label(value) -> str:
    """A slider label as shown: a str as it is, a number with 3 significant digits (0.316)."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{float(value):.3g}" if not isinstance(value, numbers.Integral) else str(int(value))
    raise ValueError(f"labels must be strings or numbers, got {value!r}")


@dataclass
class FrameSlider:
    """A slider over precomputed frames: ``frames[i]`` (PNG bytes) is the figure for ``labels[i]``.

    Displayed (as a cell's last expression) it is a live ipywidgets slider in Jupyter and Colab,
    a JavaScript range input on the static site, and the ``default`` frame alone with
    JavaScript off. ``html()`` and ``widget()`` give each form explicitly.
    """

    name: str  # the slider's variable, e.g. "c"
    labels: list[str]  # [G] the grid values as shown, e.g. "0.316" (numbers are shown with 3 digits)
    frames: list[bytes]  # [G] PNG bytes
    default: int  # index of the frame shown first
    descriptions: list[str] | None = None  # [G] what each frame shows (its alt text); None: automatic

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be the slider's variable (a non-empty str), got {self.name!r}")
        self.labels = [_label(label) for label in self.labels]
        if len(self.labels) != len(self.frames) or not self.frames:
            raise ValueError(
                f"labels and frames must be non-empty and of one length, got "
                f"{len(self.labels)} labels and {len(self.frames)} frames"
            )
        _check_index(self.default, len(self.frames))
        if any(not bytes(frame).startswith(b"\x89PNG") for frame in self.frames):
            raise ValueError("frames must be PNG bytes")
        if self.descriptions is not None and (
            len(self.descriptions) != len(self.frames)
            or not all(isinstance(d, str) and d.strip() for d in self.descriptions)
        ):
            raise ValueError(
                f"descriptions must be one non-empty str per frame ({len(self.frames)}), got {self.descriptions!r}"
            )

    def html(self) -> str:
        """The static slider: a range input (hidden until the script shows it), every frame as a
        data: image with all but the default hidden, and the script that switches them."""
        element_id = f"coursekit-slider-{next(_ids)}-{zlib.crc32(self.frames[self.default]):08x}"
        name = html.escape(self.name)
        images = []
        for index, (label, frame) in enumerate(zip(self.labels, self.frames)):
            label = html.escape(label)
            hidden = "" if index == self.default else ' style="display:none"'
            data = base64.b64encode(frame).decode("ascii")
            if self.descriptions is None:
                alt, origin = f"The figure for {name} = {label}.", "automatic"
            else:
                alt, origin = html.escape(" ".join(self.descriptions[index].split()), quote=True), "written"
            images.append(
                f'<img src="data:image/png;base64,{data}" alt="{alt}" data-description="{origin}" '
                f'data-label="{label}"{hidden}>'
            )
        control = (
            f'<div class="coursekit-slider-control" style="display:none"><label>{name} '
            f'<input type="range" min="0" max="{len(self.frames) - 1}" step="1" '
            f'value="{self.default}" aria-valuetext="{name} = {html.escape(self.labels[self.default])}" '
            f'style="width:20em;max-width:70%;vertical-align:middle"></label> '
            f'{name} = <output aria-live="polite">{html.escape(self.labels[self.default])}</output></div>'
        )
        return (
            f'<div class="coursekit-slider" id="{element_id}">\n{control}\n'
            + "\n".join(images)
            + f"\n<script>{_SCRIPT % element_id}</script>\n</div>"
        )

    def widget(self) -> Any:
        """The live slider: an ipywidgets ``SelectionSlider`` whose value swaps an ``Image``'s PNG."""
        import ipywidgets as widgets

        image = widgets.Image(value=self.frames[self.default], format="png", layout=widgets.Layout(max_width="100%"))
        slider = widgets.SelectionSlider(
            options=[(label, i) for i, label in enumerate(self.labels)],
            value=self.default,
            description=self.name,
            continuous_update=True,
            layout=widgets.Layout(width="60%"),
        )

        def show(change):
            image.value = self.frames[change["new"]]

        slider.observe(show, names="value")
        return widgets.VBox([slider, image])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "text/plain": f"FrameSlider({self.name}: {len(self.frames)} frames)",
            "text/html": self.html(),
        }
        if _in_kernel():
            try:
                box = self.widget()
            except ImportError:  # no ipywidgets: the HTML slider works in notebooks too
                return bundle
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2,
                "version_minor": 0,
                "model_id": box.model_id,
            }
        return bundle


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget has a front end to talk to)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def c_slider(path: PenaltyPath, index: int | None = None) -> FrameSlider:
    """The slider over ``path``'s c grid, one ``plot_penalty_solution`` frame per c, starting at
    ``index`` (default: the middle of the grid).

    Used in chapter 3a (book/03a_lbfgs_attack.md).
    """
    count = len(path.c_values)
    start = count // 2 if index is None else index
    _check_index(start, count)
    frames = render_frames(*penalty_figure(path), count)
    descriptions = [penalty_description(path, i) for i in range(count)]
    return FrameSlider("c", [f"{c:.3g}" for c in path.c_values], frames, int(start), descriptions)


def epsilon_slider(curves: pd.DataFrame, epsilon: float | None = None) -> FrameSlider:
    """The slider over the ε grid of ``curves`` (``epsilon_curves``' table), one
    ``plot_epsilon_curves`` frame per ε, starting at the grid value nearest ``epsilon``
    (default: the middle of the grid).

    Used in chapter 4 (book/04_transfer.md).
    """
    values = [float(e) for e in curves.index]
    start = len(values) // 2 if epsilon is None else nearest_index(values, epsilon)
    frames = render_frames(*epsilon_figure(curves), len(values))
    descriptions = [epsilon_description(curves, i) for i in range(len(values))]
    return FrameSlider("ε", [f"{e:.3g}" for e in values], frames, start, descriptions)
