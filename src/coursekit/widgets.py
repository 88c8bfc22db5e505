"""The c and ε sliders. Each comes with a static figure for its default value, which is what
the built HTML shows (a widget needs a kernel to redraw)."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from .attack import distortion, solve_penalty


@dataclass
class PenaltyPath:
    """The penalty problem's solution for one image and target over a grid of c values."""

    x: torch.Tensor  # [1, 1, 28, 28]
    target: int
    c_values: np.ndarray  # [G]
    solutions: torch.Tensor  # [G, 1, 28, 28]
    probabilities: torch.Tensor  # [G, 10]
    distortion: np.ndarray  # [G]


def penalty_path(model, x: torch.Tensor, target: int, c_values) -> PenaltyPath:
    """Solve min c·|r|² + loss_f(x + r, target) for every c in ``c_values``, in one batched call."""
    c = torch.as_tensor(np.asarray(c_values, dtype=np.float32))
    xs = x.reshape(1, *x.shape[-3:]).expand(len(c), *x.shape[-3:]).contiguous()
    targets = torch.full((len(c),), int(target), dtype=torch.long)
    solutions = solve_penalty(model, xs, targets, c).cpu()
    with torch.no_grad():
        device = next(model.parameters()).device
        probabilities = torch.softmax(model(solutions.to(device)), 1).cpu()
    return PenaltyPath(x=xs[:1].cpu(), target=int(target), c_values=np.asarray(c_values, dtype=float),
                       solutions=solutions, probabilities=probabilities,
                       distortion=distortion(xs.cpu(), solutions).numpy())


def plot_penalty_solution(path: PenaltyPath, index: int):
    """x + r for the index-th c, its class probabilities and distortion, and the distortion
    and target probability along the whole c grid."""
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), gridspec_kw={"width_ratios": [1, 1, 1.6, 2]})
    c = path.c_values[index]
    probs = path.probabilities[index].numpy()
    predicted = int(probs.argmax())
    for ax, image, title in ((axes[0], path.x[0], "x"), (axes[1], path.solutions[index], f"x + r, f = {predicted}")):
        ax.imshow(image.squeeze().numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    colors = ["tab:red" if k == path.target else "tab:gray" for k in range(10)]
    axes[2].bar(range(10), probs, color=colors)
    axes[2].set_xticks(range(10))
    axes[2].set_ylim(0, 1)
    axes[2].set_title(f"probabilities (target {path.target} in red)", fontsize=9)
    axes[3].semilogx(path.c_values, path.distortion, label="distortion")
    axes[3].set_xlabel("c (weight on |r|²)")
    axes[3].set_ylabel("distortion")
    twin = axes[3].twinx()
    twin.semilogx(path.c_values, path.probabilities[:, path.target].numpy(), color="tab:red", label="p(target)")
    twin.set_ylim(0, 1)
    twin.set_ylabel("p(target)", color="tab:red")
    axes[3].axvline(c, color="k", linestyle=":")
    axes[3].set_title(f"c = {c:.3g}: distortion {path.distortion[index]:.4f}", fontsize=9)
    fig.tight_layout()
    return fig


def _slider(options, value, description: str, draw_figure):
    """A SelectionSlider whose changes redraw ``draw_figure(value)`` in an Output below it."""
    import ipywidgets as widgets
    from IPython.display import display

    output = widgets.Output()
    slider = widgets.SelectionSlider(options=options, value=value, description=description,
                                     continuous_update=False, layout=widgets.Layout(width="60%"))

    def draw(change=None):
        with output:
            output.clear_output(wait=True)
            fig = draw_figure(slider.value)
            display(fig)
            plt.close(fig)

    slider.observe(draw, names="value")
    draw()
    return widgets.VBox([slider, output])


def c_slider(path: PenaltyPath, index: int | None = None):
    """An ipywidgets slider over the precomputed c grid that redraws ``plot_penalty_solution``."""
    options = [(f"{c:.3g}", i) for i, c in enumerate(path.c_values)]
    start = len(path.c_values) // 2 if index is None else index
    return _slider(options, start, "c", lambda i: plot_penalty_solution(path, i))


def plot_epsilon_curves(curves, epsilon: float):
    """Error vs ε for the adversarial direction (solid) and Gaussian noise (dashed) on each
    target, and the errors at ``epsilon`` as bars."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    targets = curves["adversarial direction"].columns
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for color, name in zip(colors, targets):
        axes[0].plot(curves.index, curves[("adversarial direction", name)], color=color, label=f"{name}: adversarial")
        axes[0].plot(curves.index, curves[("Gaussian noise", name)], color=color, linestyle="--")
    axes[0].axvline(epsilon, color="k", linestyle=":")
    axes[0].set_xlabel("ε (per-pixel RMS of the perturbation)")
    axes[0].set_ylabel("error rate")
    axes[0].set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    axes[0].set_title("solid: adversarial direction, dashed: Gaussian noise", fontsize=9)
    nearest = curves.index[np.abs(np.asarray(curves.index) - epsilon).argmin()]
    row = curves.loc[nearest]
    width = 0.38
    positions = np.arange(len(targets))
    axes[1].bar(positions - width / 2, [row[("adversarial direction", t)] for t in targets], width, label="adversarial")
    axes[1].bar(positions + width / 2, [row[("Gaussian noise", t)] for t in targets], width, label="Gaussian")
    axes[1].set_xticks(positions, targets, rotation=20, fontsize=8)
    axes[1].set_ylim(0, 1)
    axes[1].legend(fontsize=8)
    axes[1].set_title(f"ε = {nearest:.3g}", fontsize=9)
    fig.tight_layout()
    return fig


def epsilon_slider(curves, epsilon: float | None = None):
    """An ipywidgets slider over the precomputed ε grid that redraws ``plot_epsilon_curves``."""
    values = list(curves.index)
    start = values[len(values) // 2] if epsilon is None else epsilon
    return _slider([(f"{e:.3g}", e) for e in values], start, "ε", lambda e: plot_epsilon_curves(curves, e))
