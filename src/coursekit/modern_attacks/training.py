"""PGD training (Madry et al. 2017) of a zoo model, cached like every trained model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .._checks import (
    check_choice,
    check_int,
    check_positive,
)

if TYPE_CHECKING:
    from ..models import ZooModel


from .common import NORMS
from .pgd import pgd

__all__ = ["madry_training"]


def madry_training(
    name: str = "FC100-100-10",
    eps: float = 0.1,
    *,
    norm: str = "inf",
    steps: int | None = None,
    epochs: int | None = None,
    subset: str = "train",
    seed: int = 0,
    profile: str | None = None,
    device: torch.device | str | None = None,
    use_cache: bool = True,
) -> ZooModel:
    """``name`` trained on PGD examples (Madry et al. 2017), cached like every zoo model.

    The profile's Adam training (``train.settings_for``) with ``epochs`` (default: the
    profile's ``madry_epochs``), where every minibatch of clean images is joined by as many
    PGD examples (ε = ``eps`` in ``norm``, ``steps`` steps of 2.5·ε/steps, random start) of
    other random training images, made for the model of that moment: half clean, half
    adversarial, the mixture of Goodfellow et al. with Madry's stronger examples (Madry et
    al. train on adversarial examples only). ``model.training_info`` has the settings and time.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    from dataclasses import replace

    from ..config import profile_sizes, resolve_profile
    from ..records import modules_version
    from ..train import TrainingRun, cache_key, cached_training, fit, settings_for

    profile = resolve_profile(profile)
    check_positive("eps", eps)
    check_choice("norm", norm, NORMS)
    sizes = profile_sizes("modern", profile)
    steps = sizes["madry_steps"] if steps is None else steps
    epochs = sizes["madry_epochs"] if epochs is None else epochs
    check_int("steps", steps)
    check_int("epochs", epochs)
    settings = replace(settings_for(name, profile), epochs=epochs)
    if settings.optimizer != "adam":
        raise ValueError(
            f"name must be a model trained by minibatch Adam (FC100-100-10, FC200-200-10, "
            f"FC123-456-10, CNN), got {name!r}, which is trained full-batch"
        )
    madry = {"eps": eps, "norm": norm, "steps": steps}
    # the PGD examples come from modern_attacks: its code (and what it imports) is in the key too
    key = cache_key(name, subset, seed, settings, madry=madry, madry_code=modules_version("modern_attacks.training"))

    def run(model: ZooModel, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> TrainingRun:
        def adversarial_batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
            pick = torch.randint(0, len(x), (settings.batch_size,), generator=generator).to(x.device)
            result = pgd(model, x[pick], y[pick], eps, norm=norm, steps=steps, seed=seed + step)
            return result.x_adv, y[pick]

        fit(model, x, y, settings, seed=seed, extra_batches=adversarial_batch)
        return TrainingRun(info=madry)

    return cached_training(name, subset, seed, key, run, tag="madry-", device=device, use_cache=use_cache).model
