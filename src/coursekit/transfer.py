"""Transfer (§4.2, Tables 2–4): adversarial examples made for one model, fed to others.

``transfer_table`` attacks each source model with ``min_distortion_attack`` (the paper's
minimum-distortion examples) and measures the error they cause on every target model,
beside Gaussian-noise rows of fixed stddev and of stddev matched to each source's own
distortion (so that the comparison is at equal size).

``amplify`` implements the two readings of Table 4's "amplified to stddev 0.1":

* ``"literal"`` — the paper's formula x + 0.1·(x′ − x)/‖x′ − x‖₂. Its per-pixel RMS is only
  0.1/√n (0.0036 on MNIST): smaller than the original perturbation, not larger.
* ``"rms"`` — the perturbation scaled so that the per-pixel RMS of the (box-clipped) result is
  0.1, which is what "from stddev 0.06 to 0.1" describes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import check_choice, check_images, check_labels, check_positive
from .attack import ATTACK_CODE_VERSION, AttackResult, distortion, min_distortion_attack
from .cache import atomic_save, key_digest, try_load
from .config import apply_cpu_threads, cache_dir
from .train import predict

AMPLIFY_READINGS = ("literal", "rms")


def gaussian_noise(x: torch.Tensor, stddev, seed: int = 0) -> torch.Tensor:
    """x + N(0, stddev²) per pixel, clipped to [0, 1]. ``stddev`` is a number or a tensor [N]
    (one per image)."""
    check_images("x", x)
    stddev = torch.as_tensor(stddev, dtype=x.dtype, device=x.device)
    if stddev.dim() not in (0, 1) or (stddev.dim() == 1 and len(stddev) != len(x)) or bool((stddev < 0).any()):
        raise ValueError(f"stddev must be a number >= 0 or a tensor of shape ({len(x)},), got {stddev!r}")
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(x.shape, generator=generator).to(x)
    scale = stddev.view(-1, *([1] * (x.dim() - 1))) if stddev.dim() == 1 else stddev
    return (x + scale * noise).clamp(0, 1)


def amplify(x: torch.Tensor, x_adv: torch.Tensor, stddev: float = 0.1, reading: str = "rms") -> torch.Tensor:
    """Table 4's amplified examples: the perturbation r = x_adv − x made larger (see module doc).

    ``reading="literal"``: x + stddev·r/‖r‖₂ (per-pixel RMS stddev/√n), clipped to [0, 1].
    ``reading="rms"``: x + s·r with s chosen per image (bisection) so that the per-pixel RMS of
    the clipped result's perturbation is ``stddev``. Images with r = 0 stay unchanged.
    """
    check_choice("reading", reading, AMPLIFY_READINGS)
    check_positive("stddev", stddev)
    check_images("x", x)
    check_images("x_adv", x_adv)
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv must have the same shape, got {tuple(x.shape)} and {tuple(x_adv.shape)}")
    r = (x_adv - x).flatten(1)
    norm = r.norm(dim=1, keepdim=True)
    safe = torch.where(norm > 0, norm, torch.ones_like(norm))
    if reading == "literal":
        out = x.flatten(1) + stddev * r / safe
        return out.clamp(0, 1).view_as(x)
    pixels = r.shape[1]
    x_flat = x.flatten(1)

    def rms(scale):
        return ((x_flat + scale[:, None] * r).clamp(0, 1) - x_flat).pow(2).mean(1).sqrt()

    low = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    high = stddev * pixels**0.5 / safe.squeeze(1)  # unclipped: exactly stddev
    while bool((rms(high) < stddev * (1 - 1e-6)).any() & (high < 1e6).all()):
        grow = rms(high) < stddev * (1 - 1e-6)
        high = torch.where(grow, high * 2, high)
    for _ in range(40):
        mid = 0.5 * (low + high)
        small = rms(mid) < stddev
        low, high = torch.where(small, mid, low), torch.where(small, high, mid)
    scale = torch.where(norm.squeeze(1) > 0, high, torch.zeros_like(high))
    return (x_flat + scale[:, None] * r).clamp(0, 1).view_as(x)


def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The fraction of images that ``model`` misclassifies."""
    return (predict(model, x) != y.to(x.device)).float().mean().item()


def adversarial_examples(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, cache: bool = True,
                         **attack_options) -> AttackResult:
    """``min_distortion_attack(model, x, y)``, cached on disk by the model's weights, the images
    and the options (so re-running a chapter does not attack again)."""
    device = next(model.parameters()).device
    key = {
        "weights": key_digest({k: _digest(v) for k, v in model.state_dict().items()}),
        "x": _digest(x), "y": _digest(y), "options": attack_options, "version": ATTACK_CODE_VERSION,
    }
    path = cache_dir() / "attacks" / f"{key_digest(key)}.pt"
    if cache:
        stored = try_load(path)
        if stored is not None:
            return AttackResult(**stored).to(device)
    apply_cpu_threads(device)
    result = min_distortion_attack(model, x, y, **attack_options)
    if cache:
        atomic_save({name: value.cpu() for name, value in vars(result).items()}, path)
    return result


def _digest(tensor: torch.Tensor) -> str:
    import hashlib

    data = tensor.detach().cpu().contiguous()
    return hashlib.sha256(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"").hexdigest()[:16]


def _as_models(models, argument: str) -> dict[str, nn.Module]:
    from .models import MODEL_NAMES
    from .train import train

    if isinstance(models, Mapping):
        for name, model in models.items():
            if not isinstance(model, nn.Module):
                raise ValueError(f"{argument}[{name!r}] must be a torch model, got {type(model).__name__}")
        return dict(models)
    if isinstance(models, Sequence) and not isinstance(models, str):
        unknown = [m for m in models if m not in MODEL_NAMES]
        if unknown:
            raise ValueError(f"{argument} has unknown model names {unknown}; valid names: {', '.join(MODEL_NAMES)}")
        return {name: train(name) for name in models}
    raise ValueError(f"{argument} must be a mapping of name -> model or a list of zoo names, got {type(models).__name__}")


@dataclass
class TransferTable:
    """Error rates of distorted examples (rows) on each model (columns).

    ``errors``: pandas DataFrame, rows = source models then noise rows, columns = target
    models plus "Av. distortion" (the rows' mean per-pixel RMS perturbation).
    ``adversarial``: the AttackResult of each source.
    """

    errors: object
    adversarial: dict = field(default_factory=dict)


def transfer_table(sources, targets, x: torch.Tensor, y: torch.Tensor, *, noise_stddevs: Sequence[float] = (0.1, 0.3),
                   matched_noise: bool = True, seed: int = 0, cache: bool = True, **attack_options) -> TransferTable:
    """Cross-model error rates of minimum-distortion adversarial examples (Tables 2 and 4).

    Args:
        sources, targets: {name: model} mappings, or lists of zoo names (trained with defaults).
        x, y: the images [N, 1, 28, 28] in [0, 1] and labels [N] to distort.
        noise_stddevs: Gaussian-noise rows of these stddevs (Table 2: 0.1, 0.3; Table 4: 0.06, 0.1).
        matched_noise: add, per source, a Gaussian row whose stddev equals each image's own
            adversarial distortion (the comparison at equal size).
        attack_options: passed to ``min_distortion_attack``.
    """
    import pandas as pd

    sources = _as_models(sources, "sources")
    targets = _as_models(targets, "targets")
    check_images("x", x)
    y = check_labels("y", y, len(x), 10)
    for s in noise_stddevs:
        check_positive("noise_stddevs", s, allow_zero=True)
    rows, index, adversarial = [], [], {}
    for name, model in sources.items():
        result = adversarial_examples(model, x, y, cache=cache, **attack_options)
        adversarial[name] = result
        x_adv = result.x_adv.to(x.device)
        rows.append([error_rate(t, x_adv, y) for t in targets.values()] + [result.distortion.mean().item()])
        index.append(name)
    for stddev in noise_stddevs:
        noisy = gaussian_noise(x, stddev, seed)
        rows.append([error_rate(t, noisy, y) for t in targets.values()] + [distortion(x, noisy).mean().item()])
        index.append(f"Gaussian noise, stddev={stddev:g}")
    if matched_noise:
        for name, result in adversarial.items():
            noisy = gaussian_noise(x, result.distortion.to(x.device), seed)
            rows.append([error_rate(t, noisy, y) for t in targets.values()] + [distortion(x, noisy).mean().item()])
            index.append(f"Gaussian noise matched to {name}")
    errors = pd.DataFrame(rows, index=index, columns=[*targets, "Av. distortion"])
    return TransferTable(errors=errors, adversarial=adversarial)


def epsilon_curves(source_result: AttackResult, x: torch.Tensor, y: torch.Tensor, targets: Mapping[str, nn.Module],
                   epsilons: Sequence[float], *, seed: int = 0):
    """For the ε slider: error on each target when the source's adversarial perturbation is
    scaled to per-pixel RMS ε (``amplify(..., reading="rms")``) versus Gaussian noise of the
    same RMS. Returns a pandas DataFrame indexed by ε with columns (kind, target)."""
    import pandas as pd

    x = x.to(source_result.x_adv.device)
    y = y.to(x.device)
    records = {}
    changed = source_result.distortion > 0
    xs, ys, adv = x[changed], y[changed], source_result.x_adv[changed]
    for eps in epsilons:
        scaled = amplify(xs, adv, eps, reading="rms")
        noisy = gaussian_noise(xs, eps, seed)
        row = {}
        for name, model in targets.items():
            row[("adversarial direction", name)] = error_rate(model, scaled, ys)
            row[("Gaussian noise", name)] = error_rate(model, noisy, ys)
        records[eps] = row
    table = pd.DataFrame.from_dict(records, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "epsilon"
    return table
