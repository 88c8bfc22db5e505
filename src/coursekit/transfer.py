"""Transfer (§4.2, Tables 2–4): adversarial examples made for one model, fed to others.

``transfer_table`` attacks each source model with ``min_distortion_attack`` (the paper's
minimum-distortion examples) and measures the error they cause on every target model,
beside Gaussian-noise rows of a fixed size and of a size matched to each source's own
distortion (so that the comparison is at equal size). ``gaussian_noise`` solves for the σ whose
clipped noise has the requested *realised* RMS, so "equal size" holds after clipping too.

``amplify`` implements the two readings of Table 4's "amplified to stddev 0.1":

* ``"literal"`` — the paper's formula x + 0.1·(x′ − x)/‖x′ − x‖₂. Its per-pixel RMS is only
  0.1/√n (0.0036 on MNIST): smaller than the original perturbation, not larger.
* ``"rms"`` — the perturbation scaled so that the per-pixel RMS of the (box-clipped) result is
  0.1, which is what "from stddev 0.06 to 0.1" describes.

**Which attack makes the examples.** ``PAPER_METHOD`` (the same mapping as
``coursekit.paper.PAPER_ATTACK``, which chapter 3 uses for Table 1) holds the options of
``min_distortion_attack`` that give the paper's method: the penalty problem with the search over
c, *without* the polish (``polish=0``: the linearise-and-project step of DeepFool and FAB, not in
the paper). It keeps ``refine=True``: the paper's answer is the minimiser at the extreme c that
still reaches l ("the minimum c" of §4.1), which lies on the decision boundary; a search that tries
a few values of c stops inside the target region, and ``refine`` bisects the example back along
its own ray x + t·r to the boundary. That is a stand-in for the end of the search, not the same
point: the penalty's minimiser at the critical c lies elsewhere on the boundary in general
(chapter 3b measures the two columns side by side). Chapter 4 passes
``**PAPER_METHOD`` wherever its tables stand beside the paper's; ``method_label`` names the
method of a set of options, and ``TransferTable.method`` says which one made a table.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._checks import check_choice, check_images, check_labels, check_positive, model_device
from .attack import AttackResult, attack_cache_key, distortion, lbfgs_attack, min_distortion_attack
from .cache import key_digest, load_cached, save_record, tensor_digest
from .config import cache_dir
from .paper import PAPER_ATTACK
from .train import evaluate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    import numpy as np
    import pandas as pd


__all__ = [
    "cached_attack",
    "AMPLIFY_READINGS",
    "NOISE_READINGS",
    "PAPER_METHOD",
    "distortion",  # re-exported from attack (chapter 4 imports it from here)
    "adversarial_examples",
    "amplify",
    "cross_training_table",
    "epsilon_curves",
    "every_target_examples",
    "fooled_pairs",
    "gaussian_noise",
    "method_label",
    "noise_matched_to",
    "noise_readings",
    "transfer_matrix",
    "transfer_table",
    "TransferTable",
]

AMPLIFY_READINGS = ("literal", "rms")
NOISE_READINGS = ("rms", "stddev")  # gaussian_noise: realised RMS after clipping, or σ before it
PAPER_METHOD = PAPER_ATTACK  # the paper's attack (see the module docstring), one definition


def method_label(attack_options: Mapping) -> str:
    """A short name (< 70 characters) for the attack ``attack_options`` configure.

    ``polish=0`` is the paper's method (penalty + search over c); any other value (the
    default of ``lbfgs_attack``) adds the polish, which the paper does not have. The paper's
    method with ``refine`` (the default) says that its search over c ends with ``refine``, the
    bisection back along r: a stand-in for the paper's "minimum c" (see the module docstring).

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    if not isinstance(attack_options, Mapping):
        raise ValueError(f"attack_options must be a mapping, got {type(attack_options).__name__}")
    defaults = inspect.signature(lbfgs_attack).parameters
    polish = attack_options.get("polish", defaults["polish"].default)
    refine = attack_options.get("refine", defaults["refine"].default)
    if polish == 0 and refine:
        return "the paper's method: penalty + c search + refine (a stand-in)"
    if polish == 0:
        name = "the paper's method: penalty + search over c"
    else:
        name = f"ours: penalty + search over c + {polish} polish rounds"
    return name if refine else name + ", no refine"


def _check_rms(rms, count: int) -> torch.Tensor:
    """``rms`` as a float64 tensor [count]: finite and >= 0 (a number or one value per image)."""
    if isinstance(rms, torch.Tensor):
        values = rms.detach().to("cpu", torch.float64)
    else:
        try:
            values = torch.as_tensor(rms, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"rms must be a number or a tensor [{count}], got {rms!r}") from None
    if values.dim() == 0:
        values = values.expand(count)
    if values.shape != (count,):
        raise ValueError(f"rms must be a number or a tensor [{count}], got shape {tuple(values.shape)}")
    bad = ~torch.isfinite(values) | (values < 0)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise ValueError(f"rms must be finite and >= 0, got {values[i].item()!r} for image {i}")
    return values


def gaussian_noise(x: torch.Tensor, rms: float | torch.Tensor, seed: int = 0, *, reading: str = "rms") -> torch.Tensor:
    """Gaussian noise whose *realised* per-image RMS distortion, after clipping, is ``rms``.

    x + σ·z clipped to [0, 1], z ~ N(0, I) [N, ...] (``seed``), with σ ≥ 0 solved per image
    (bisection to relative precision 1e-9) so that ``distortion(x, result)`` equals ``rms``.
    Clipping removes most of the noise on pixels at 0 or 1 (about 80% of an MNIST digit), so σ
    is larger than ``rms``: without the solve, noise "of stddev ε" would be smaller than a
    perturbation of RMS ε. ``rms``: a finite number >= 0 or a tensor [N]; a ValueError if it
    is NaN, infinite, negative, or larger than clipped noise can reach for an image.

    ``reading="stddev"`` reads the number the other way, as the paper's "Gaussian noise with
    stddev" may mean it: σ = ``rms`` itself, before clipping (the same z for the same ``seed``,
    so the two readings can be compared image by image); its realised RMS is then smaller.

    Used in chapters 3a (book/03a_lbfgs_attack.md) and 4 (book/04_transfer.md).
    """
    check_choice("reading", reading, NOISE_READINGS)
    check_images("x", x)
    target = _check_rms(rms, len(x))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(x.shape, generator=generator, dtype=torch.float64).flatten(1)
    x64 = x.detach().to("cpu", torch.float64).flatten(1)
    if reading == "stddev":
        out = (x64 + target[:, None] * z).clamp(0, 1)
        return out.view(x.shape).to(device=x.device, dtype=x.dtype)
    reach = torch.where(z > 0, 1 - x64, torch.where(z < 0, x64, torch.zeros_like(x64)))
    limit = reach.pow(2).mean(1).sqrt()  # the realised RMS as σ → ∞
    unreachable = (target > limit * (1 - 1e-6)).nonzero()
    if len(unreachable):
        i = int(unreachable[0])
        raise ValueError(
            f"rms={target[i].item():.4g} is more than clipped noise can reach "
            f"for image {i} (at most {limit[i].item():.4g})"
        )

    def realised(sigma):
        return ((x64 + sigma[:, None] * z).clamp(0, 1) - x64).pow(2).mean(1).sqrt()

    low, high = torch.zeros_like(target), target.clone()
    while bool((realised(high) < target).any()):
        high = torch.where(realised(high) < target, 2 * high, high)
    for _ in range(100):
        mid = 0.5 * (low + high)
        small = realised(mid) < target
        low, high = torch.where(small, mid, low), torch.where(small, high, mid)
        if bool(((high - low) <= 1e-9 * high).all()):
            break
    out = (x64 + high[:, None] * z).clamp(0, 1)
    return out.view(x.shape).to(device=x.device, dtype=x.dtype)


def amplify(x: torch.Tensor, x_adv: torch.Tensor, stddev: float = 0.1, reading: str = "rms") -> torch.Tensor:
    """Table 4's amplified examples: the perturbation r = x_adv − x made larger (see module doc).

    ``reading="literal"``: x + stddev·r/‖r‖₂ (per-pixel RMS stddev/√n), clipped to [0, 1].
    ``reading="rms"``: x + s·r with s chosen per image (bisection) so that the per-pixel RMS of
    the clipped result's perturbation is ``stddev``. Images with r = 0 stay unchanged.

    Used in chapter 4 (book/04_transfer.md).
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


def cached_attack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: Callable[[], AttackResult],
    rows: int,
    *,
    cache: bool = True,
    attack_options: dict[str, Any],
    **key_extra: Any,
) -> AttackResult:
    """``attack()``'s AttackResult of ``rows`` rows, cached on disk under a key of the model's
    architecture and weights, the images x and labels y, the attack's code and options
    (``attack_cache_key``) and ``key_extra``; the skeleton of every cached attack. A cached
    result is used only if it holds every field of ``AttackResult`` with ``rows`` rows (x_adv
    of x's image shape); otherwise it is recomputed. The result is on the model's device."""
    key = {
        "architecture": f"{type(model).__module__}.{type(model).__qualname__}: {model!r}",
        "weights": key_digest({k: tensor_digest(v) for k, v in model.state_dict().items()}),
        "x": tensor_digest(x),
        "y": tensor_digest(y),
        "attack": attack_cache_key(**attack_options),
        **key_extra,
    }
    path = cache_dir() / "attacks" / f"{key_digest(key)}.pt"
    if cache:
        stored = load_cached(path, _attack_schema(x), {"N": rows})
        if stored is not None:
            return AttackResult(**{name: stored[name] for name in _attack_schema(x)}).to(model_device(model))
    result = attack()
    if cache:
        save_record({name: value.cpu() for name, value in vars(result).items()}, path)
    return result


def adversarial_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, cache: bool = True, **attack_options: Any
) -> AttackResult:
    """``min_distortion_attack(model, x, y)``, cached on disk by the model's architecture and
    weights, the images and the options (so re-running a chapter does not attack again;
    ``cached_attack``).

    A cached result is used only if it holds every field of ``AttackResult`` with one row per
    image (x_adv of x's shape); otherwise it is recomputed.

    Used in chapters 3b (book/03b_minimum_distortion.md) and 4 (book/04_transfer.md).
    """

    def attack() -> AttackResult:
        return min_distortion_attack(model, x, y, **attack_options)

    return cached_attack(model, x, y, attack, len(x), cache=cache, attack_options=attack_options)


def every_target_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, cache: bool = True, **attack_options: Any
) -> AttackResult:
    """D(x, l) for every image and every l ≠ y, not only the closest: ``lbfgs_attack`` on all
    N·(K−1) pairs (targets in increasing order per image, y left out), cached and validated like
    ``adversarial_examples``. For Table 1's other readings (the mean over targets).

    Used in chapter 3b (book/03b_minimum_distortion.md).
    """
    from .attack import all_other_targets

    device = model_device(model)
    check_images("x", x)
    y = check_labels("y", y, len(x), 10)

    def attack() -> AttackResult:
        image, target = all_other_targets(y.to(device))
        return lbfgs_attack(model, x.to(device)[image], target, **attack_options)

    return cached_attack(model, x, y, attack, 9 * len(x), cache=cache, attack_options=attack_options, every_target=True)


def _attack_schema(x: torch.Tensor) -> dict:
    """The fields of a cached ``AttackResult`` for images x [N, ...]."""
    rows = {
        "target": torch.int64,
        "success": torch.bool,
        "margin": None,
        "c": None,
        "distortion": None,
        "l2": None,
        "evaluations": torch.int64,
        "forward_only": torch.int64,
    }
    return {"x_adv": (None, ("N", *x.shape[1:])), **{name: (dtype, ("N",)) for name, dtype in rows.items()}}


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
    raise ValueError(
        f"{argument} must be a mapping of name -> model or a list of zoo names, got {type(models).__name__}"
    )


@dataclass
class TransferTable:
    """Error rates of distorted examples (rows) on each model (columns).

    ``errors``: pandas DataFrame, rows = source models then noise rows, columns = target
    models plus "Av. distortion" (the rows' mean per-pixel RMS perturbation) and "images"
    (how many images the row measures).
    ``adversarial``: the AttackResult of each source.
    ``method``: which attack made the examples (``method_label`` of the attack options).
    """

    errors: object
    adversarial: dict = field(default_factory=dict)
    method: str = ""


def transfer_table(
    sources: Mapping[str, nn.Module],
    targets: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    noise_stddevs: Sequence[float] = (0.1, 0.3),
    matched_noise: bool = True,
    seed: int = 0,
    cache: bool = True,
    **attack_options: Any,
) -> TransferTable:
    """Cross-model error rates of minimum-distortion adversarial examples (Tables 2 and 4).

    Args:
        sources, targets: {name: model} mappings, or lists of zoo names (trained with defaults).
        x, y: the images [N, 1, 28, 28] in [0, 1] and labels [N] to distort.
        noise_stddevs: Gaussian-noise rows of these stddevs (Table 2: 0.1, 0.3; Table 4: 0.06, 0.1).
        noise_stddevs: each noise row's realised per-pixel RMS (``gaussian_noise``).
        matched_noise: add, per source, a Gaussian row whose realised RMS equals each image's
            own adversarial distortion (the comparison at equal size). Images whose attack
            failed (distortion inf) are left out of that row; "images" counts those kept.
        attack_options: passed to ``min_distortion_attack``; ``**PAPER_METHOD`` for the
            paper's method (the default adds the polish). ``.method`` names the one used.

    Used in chapter 4 (book/04_transfer.md).
    """
    import pandas as pd

    sources = _as_models(sources, "sources")
    targets = _as_models(targets, "targets")
    check_images("x", x)
    if len(x) == 0:
        raise ValueError(f"x must hold at least one image, got shape {tuple(x.shape)}")
    y = check_labels("y", y, len(x), 10)
    for s in noise_stddevs:
        check_positive("noise_stddevs", s, allow_zero=True)
    rows, index, adversarial = [], [], {}

    def measure(images, labels, size):
        return [evaluate(t, images, labels) for t in targets.values()] + [size, len(images)]

    for name, model in sources.items():
        result = adversarial_examples(model, x, y, cache=cache, **attack_options)
        adversarial[name] = result
        rows.append(measure(result.x_adv.to(x.device), y, result.distortion.mean().item()))
        index.append(name)
    for stddev in noise_stddevs:
        noisy = gaussian_noise(x, stddev, seed)
        rows.append(measure(noisy, y, distortion(x, noisy).mean().item()))
        index.append(f"Gaussian noise, stddev={stddev:g}")
    if matched_noise:
        for name, result in adversarial.items():
            found, noisy = noise_matched_to(x, result, seed)
            rows.append(measure(noisy, y[found], distortion(x[found], noisy).mean().item()))
            index.append(f"Gaussian noise matched to {name}")
    errors = pd.DataFrame(rows, index=index, columns=[*targets, "Av. distortion", "images"])
    return TransferTable(errors=errors, adversarial=adversarial, method=method_label(attack_options))


def transfer_matrix(
    examples: Mapping[str, torch.Tensor], models: Mapping[str, nn.Module], y: torch.Tensor
) -> torch.Tensor:
    """The transfer matrix: entry [i, j] is the share of source i's examples that model j
    misclassifies (its answer is not the true label), a float64 tensor [S, M] in [0, 1].

    ``examples``: {source name: x_adv [N, ...]} in [0, 1], rows in this order; ``models``:
    {name: classifier}, columns in this order; ``y`` [N] the true labels of the images the
    examples were made from. The diagonal of a square matrix whose sources are the models is 1
    where every attack succeeded. ``transfer_table`` computes the same cells (and noise rows).
    """
    from .train import predict

    if not examples or not models:
        raise ValueError("examples and models must each name at least one entry")
    rates = torch.zeros(len(examples), len(models), dtype=torch.float64)
    for i, (source, x_adv) in enumerate(examples.items()):
        check_images(f"examples[{source!r}]", x_adv)
        labels = check_labels("y", y, len(x_adv), 10).to(x_adv.device)
        for j, model in enumerate(models.values()):
            rates[i, j] = (predict(model, x_adv) != labels).double().mean()
    return rates


def noise_matched_to(x: torch.Tensor, result: AttackResult, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian noise of each image's own adversarial size: the "matched" rows of ``transfer_table``.

    x [N, ...] the attacked images, ``result`` their AttackResult. Returns (found [N] bool on
    x's device: the images whose attack succeeded, which alone have a size; noisy [n, ...]:
    ``gaussian_noise(x[found], result.distortion[found], seed)``, n = found.sum()).
    """
    if len(result) != len(x):
        raise ValueError(f"result must hold one row per image of x ({len(x)}), got {len(result)}")
    found = torch.isfinite(result.distortion).to(x.device)  # failed: no size
    return found, gaussian_noise(x[found], result.distortion.to(x.device)[found], seed)


def epsilon_curves(
    source_result: AttackResult,
    x: torch.Tensor,
    y: torch.Tensor,
    targets: Mapping[str, nn.Module],
    epsilons: Sequence[float],
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """For the ε slider: error on each target when the source's adversarial perturbation is
    scaled to per-pixel RMS ε (``amplify(..., reading="rms")``) versus Gaussian noise of the
    same RMS. Returns a pandas DataFrame indexed by ε with columns (kind, target).

    Used in chapter 4 (book/04_transfer.md).
    """
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
            row[("adversarial direction", name)] = evaluate(model, scaled, ys)
            row[("Gaussian noise", name)] = evaluate(model, noisy, ys)
        records[eps] = row
    table = pd.DataFrame.from_dict(records, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    table.index.name = "epsilon"
    return table


def cross_training_table(
    models: Mapping[str, nn.Module],
    attacks: Mapping[str, AttackResult],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    stddev: float = 0.1,
    noise_stddev: float = 0.06,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 4: the error of every model (columns) on each source's adversarial examples, on
    Gaussian noise of ``noise_stddev``, on the examples amplified to ``stddev`` in the RMS
    reading and by the literal formula (see ``amplify``), and on Gaussian noise of ``stddev``.

    ``attacks``: {source name: AttackResult for the images x [N, ...] with labels y [N]}.
    Returns a pandas DataFrame with the paper's row names (the literal rows marked
    "(literal formula)").

    Used in chapter 4 (book/04_transfer.md).
    """
    import pandas as pd

    check_images("x", x)
    if len(x) == 0:
        raise ValueError(f"x must hold at least one image, got shape {tuple(x.shape)}")
    y = check_labels("y", y, len(x), 10)

    def row(images):
        return [evaluate(m, images, y.to(images.device)) for m in models.values()]

    rows = {f"Distorted for {name}": row(r.x_adv) for name, r in attacks.items()}
    rows[f"Gaussian noise with stddev={noise_stddev:g}"] = row(gaussian_noise(x, noise_stddev, seed=seed))
    for reading, suffix in (("rms", ""), ("literal", " (literal formula)")):
        for name, r in attacks.items():
            amplified = amplify(x.to(r.x_adv.device), r.x_adv, stddev, reading=reading)
            rows[f"Distorted for {name} amplified to stddev={stddev:g}{suffix}"] = row(amplified)
    rows[f"Gaussian noise with stddev={stddev:g}"] = row(gaussian_noise(x, stddev, seed=seed))
    return pd.DataFrame(rows, index=list(models)).T


NOISE_READING_LABELS = {"stddev": "σ as stated, before clipping", "rms": "RMS after clipping"}


def noise_readings(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    stddevs: Sequence[float],
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """The paper's "Gaussian noise with stddev s" rows under both readings of s, side by side.

    For each s in ``stddevs`` (> 0) and each reading of ``gaussian_noise`` (``"stddev"``: σ = s
    before clipping; ``"rms"``: the realised RMS after clipping is s, so σ is larger), the error
    of every model on x + noise (the same z for both readings, ``seed``). ``x`` [N, ...] in
    [0, 1], ``y`` [N]. Returns a pandas DataFrame indexed by (stddev, reading label), columns
    the model names, then "realised RMS" (mean per-pixel RMS of the noise after clipping).

    Used in chapter 4 (book/04_transfer.md).
    """
    import pandas as pd

    check_images("x", x)
    if len(x) == 0:
        raise ValueError(f"x must hold at least one image, got shape {tuple(x.shape)}")
    y = check_labels("y", y, len(x), 10)
    if not stddevs:
        raise ValueError("stddevs must name at least one noise size")
    rows, index = [], []
    for stddev in stddevs:
        check_positive("stddevs", stddev)
        for reading in ("stddev", "rms"):
            noisy = gaussian_noise(x, stddev, seed, reading=reading)
            row = {name: evaluate(m, noisy, y.to(noisy.device)) for name, m in models.items()}
            row["realised RMS"] = distortion(x, noisy).mean().item()
            rows.append(row)
            index.append((float(stddev), NOISE_READING_LABELS[reading]))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["stddev", "reading"]))


def fooled_pairs(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: Mapping[str, AttackResult],
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Image by image, the off-diagonal cells of a transfer table (for intervals over images).

    ``attacks``: {source: AttackResult for x [N, ...], y [N]}, each source one of ``models``.
    For every ordered pair (source, target) of different models, in row-major order (P = S(S−1)
    pairs): whether the source's adversarial example of each image fools the target, and whether
    Gaussian noise of that example's own size (``noise_matched_to``, as ``transfer_table``'s
    matched rows) does. Returns (adversarial [N, P], noise [N, P]) numpy float arrays of 1.0
    (fooled) and 0.0, noise NaN where the source's attack failed (no size to match). Their
    column means are ``transfer_table``'s off-diagonal cells and matched-noise cells.

    Used in chapter 4 (book/04_transfer.md).
    """
    import numpy as np

    from .train import predict

    names = list(models)
    if sorted(attacks) != sorted(names):
        raise ValueError(f"attacks must have one AttackResult per model {names}, got {list(attacks)}")
    y = check_labels("y", y, len(x), 10).cpu()
    adversarial, noise = [], []
    for source in names:
        x_adv = attacks[source].x_adv.cpu()
        found, noisy = noise_matched_to(x.cpu(), attacks[source].to("cpu"), seed)
        for target in names:
            if target == source:
                continue
            adversarial.append((predict(models[target], x_adv) != y).double().numpy())
            column = np.full(len(x), np.nan)
            column[found.numpy()] = (predict(models[target], noisy) != y[found]).double().numpy()
            noise.append(column)
    return np.stack(adversarial, 1), np.stack(noise, 1)
