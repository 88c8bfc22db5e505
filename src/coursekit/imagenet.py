"""Figure 5 of the paper on real photos: AlexNet pushed to "ostrich" by the course's attack.

The paper's Figure 5 shows, for images that AlexNet classifies correctly, the image, the
difference to its adversarial example magnified ten times, and the adversarial example, which
AlexNet classifies as "ostrich, Struthio camelus" (ImageNet class 9). Here:

``sample_photos``      photos that ship with packages the course (or Colab) already has:
                       matplotlib's ``grace_hopper.jpg`` everywhere, and scikit-image's chelsea,
                       coffee, astronaut and rocket where scikit-image is installed (Colab)
``Normalised``         the ImageNet normalisation *inside* the model, so that the attack's box
                       is the pixels' [0, 1]: the adversarial image is a valid image
``pretrained_alexnet`` torchvision's pretrained AlexNet, or ``None`` and the reason when the
                       weights cannot be downloaded (offline)
``figure5_examples``   the attack and what the figure needs (``Figure5Data``)
``figure5``            the figure: photos, differences ×10 (grey is zero), adversarial examples

Images are tensors [3, H, W] (one) or [N, 3, H, W] (a batch) with values in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from ._checks import check_int, model_device

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from matplotlib.figure import Figure


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "OSTRICH",
    "SKIMAGE_PHOTOS",
    "category_names",
    "figure5",
    "figure5_examples",
    "Figure5Data",
    "Normalised",
    "photo_tensor",
    "pretrained_alexnet",
    "sample_photos",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation (per RGB channel)
IMAGENET_STD = (0.229, 0.224, 0.225)
OSTRICH = 9  # ImageNet class 9, "ostrich, Struthio camelus": the target of the paper's Figure 5
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


class Normalised(nn.Module):
    """``model((x − mean) / std)`` for pixels x [N, 3, H, W] in [0, 1]: the normalisation a
    torchvision ImageNet model expects, done inside, so that an attack's box stays [0, 1]."""

    def __init__(self, model: nn.Module, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)  # type: ignore[operator]


def photo_tensor(image: Any, size: int = 224) -> torch.Tensor:
    """A photo (a PIL image or an array [H, W, 3] of uint8) as a tensor [3, size, size] in
    [0, 1]: the largest centred square, resized to ``size`` (bicubic, antialiased)."""
    from PIL import Image

    check_int("size", size, minimum=16)
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be an array [H, W, 3], got shape {image.shape}")
        image = Image.fromarray(image.astype(np.uint8))
    if not isinstance(image, Image.Image):
        raise ValueError(f"image must be a PIL image or an array [H, W, 3], got {type(image).__name__}")
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)  # type: ignore[attr-defined]
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1).contiguous()


def sample_photos(size: int = 224, limit: int | None = None) -> dict[str, torch.Tensor]:
    """{name: photo [3, size, size]}: matplotlib's Grace Hopper, then scikit-image's photos
    (``SKIMAGE_PHOTOS``) when scikit-image is installed; at most ``limit`` of them.

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    from matplotlib import cbook
    from PIL import Image

    if limit is not None:
        check_int("limit", limit)
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as hopper:
        photos = {"grace_hopper": photo_tensor(hopper, size)}
    try:
        from skimage import data
    except ImportError:
        data = None
    for name in SKIMAGE_PHOTOS if data is not None else ():
        if limit is not None and len(photos) >= limit:
            break
        try:
            photos[name] = photo_tensor(getattr(data, name)(), size)
        except Exception:  # a photo scikit-image would have to download: leave it out
            continue
    return dict(list(photos.items())[:limit])


def category_names() -> list[str]:
    """The 1000 ImageNet class names, in class order (from torchvision; no download).

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    import torchvision

    return list(torchvision.models.AlexNet_Weights.DEFAULT.meta["categories"])


def pretrained_alexnet(device: torch.device | str = "cpu") -> tuple[nn.Module | None, str]:
    """(torchvision's pretrained AlexNet wrapped in ``Normalised``, in eval mode on ``device``,
    "") or (None, the name of the error) when the weights (233 MB, downloaded once into torch's
    cache) cannot be had, e.g. offline.

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    import torchvision

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            weights = torchvision.models.AlexNet_Weights.DEFAULT
            alexnet = torchvision.models.alexnet(weights=weights, progress=False)
    except Exception as error:  # offline, or the download was interrupted
        return None, type(error).__name__
    return Normalised(alexnet).to(device).eval(), ""


@dataclass
class Figure5Data:
    """What ``figure5`` draws, one entry per photo."""

    names: list[str]  # the photos' names
    x: torch.Tensor  # [N, 3, H, W] the photos, in [0, 1]
    x_adv: torch.Tensor  # [N, 3, H, W] their adversarial examples, in [0, 1]
    before: torch.Tensor  # [N] the model's class for each photo
    after: torch.Tensor  # [N] its class for each adversarial example
    p_before: torch.Tensor  # [N] the probability of ``before``
    p_after: torch.Tensor  # [N] the probability of ``after``
    target: int  # the class the attack aimed at
    distortion: torch.Tensor  # [N] sqrt(mean r²) over all 3·H·W values (inf: not reached)


def figure5_examples(
    model: nn.Module, photos: dict[str, torch.Tensor], target: int = OSTRICH, **attack_options: Any
) -> Figure5Data:
    """Attack every photo [3, H, W] of ``photos`` towards ``target`` with ``attack.lbfgs_attack``
    (``attack_options`` go to it; the box is [0, 1], so ``model`` must take pixels in [0, 1],
    e.g. a ``Normalised`` one), on the model's device, and collect the predictions.

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    from .attack import lbfgs_attack

    if not photos:
        raise ValueError("photos must hold at least one photo [3, H, W]")
    shapes = {tuple(p.shape) for p in photos.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise ValueError(f"photos must share one shape [3, H, W], got {sorted(shapes)}")
    device = model_device(model)
    x = torch.stack(list(photos.values())).to(device)
    result = lbfgs_attack(model, x, torch.full((len(x),), int(target), device=device), **attack_options)
    with torch.no_grad():
        p_before, p_after = (torch.softmax(model(t), 1) for t in (x, result.x_adv))
    return Figure5Data(
        names=list(photos),
        x=x.cpu(),
        x_adv=result.x_adv.cpu(),
        before=p_before.argmax(1).cpu(),
        after=p_after.argmax(1).cpu(),
        p_before=p_before.amax(1).cpu(),
        p_after=p_after.amax(1).cpu(),
        target=int(target),
        distortion=result.distortion.cpu(),
    )


def _short(name: str, width: int = 16) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def figure5(data: Figure5Data, categories: list[str], magnify: float = 10.0) -> Figure:
    """The paper's Figure 5 for ``data``: per column a photo (titled with the model's class and
    its probability), the difference to its adversarial example magnified ``magnify`` times and
    shifted to grey (clamped, as the paper's "shifted by 128 and clamped"), and the
    adversarial example (titled likewise).

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    n = len(data.names)
    fig, axes = plt.subplots(3, n, figsize=(2.3 * n + 0.6, 7.2), squeeze=False)
    rows = (data.x, (0.5 + magnify * (data.x_adv - data.x)).clamp(0, 1), data.x_adv)
    for j in range(n):
        titles = (
            f"{_short(categories[data.before[j]])}\n{data.p_before[j]:.0%}",
            f"RMS {data.distortion[j]:.4f}",
            f"{_short(categories[data.after[j]])}\n{data.p_after[j]:.0%}",
        )
        for i, (images, title) in enumerate(zip(rows, titles)):
            axes[i, j].imshow(images[j].permute(1, 2, 0).numpy())
            axes[i, j].set_title(title, fontsize=8)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
    for i, name in enumerate(("photo", f"difference ×{magnify:g}", "adversarial")):
        axes[i, 0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    from .figures import describe

    columns = "; ".join(
        f"{_short(categories[data.before[j]])} ({data.p_before[j]:.0%}) becomes "
        f"{_short(categories[data.after[j]])} ({data.p_after[j]:.0%}) at RMS {data.distortion[j]:.4f}"
        for j in range(n)
    )
    return describe(
        fig,
        f"Figure 5 on {n} photo(s): each column shows the photo, the difference to its adversarial "
        f"example magnified {magnify:g} times, and the adversarial example. {columns}.",
    )
