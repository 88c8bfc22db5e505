"""Adversarial examples as training data (§4.2) and the Lipschitz regulariser (§4.3).

The paper trained a 100-100-10 network "by keeping a pool of adversarial examples a random
subset of which is continuously replaced by newly generated adversarial examples and which
is mixed into the original training set all the time", reaching a test error below 1.2%
(1.6% with weight decay alone, about 1.3% with dropout). This is hard-negative mining with
examples the model itself gets wrong.

``AdversarialPool`` holds the pool: adversarial images with their *true* labels. ``refresh``
replaces a random ``refresh_fraction`` of it by fresh examples made with ``lbfgs_attack`` for
the current model (each towards a random wrong label), recording for each new example whether
it was adversarial for the model at the time it was made. ``adversarial_pool_training``
mixes ``pool_batch`` pool examples into every minibatch and refreshes the pool every
``refresh_every`` steps.

The paper also reports that adversarial examples of the *hidden* layers helped more than those
of the input. ``layer=k`` (k ≥ 1) keeps such a pool instead: for training images x it takes the
output h = φ_k(x) of the k-th sigmoid hidden layer, attacks the layers above it (``upper``, see
``split_at_hidden_layer``) within the activations' box [0, 1], and trains only those layers on
the resulting h + r with the true labels (the layers below see the clean images only). It needs
sigmoid hidden layers, whose outputs lie in [0, 1] like pixels; ReLU layers have no such box.
``layer="all"`` (or a tuple of layers) keeps a pool at each of those layers together, the
paper's setting: every pool is refreshed on the same schedule and mixed into every minibatch.

The Lipschitz regulariser is ``train(name, lipschitz=weight)``: the sum of the layers'
operator norms (``coursekit.train.lipschitz_penalty``) added to the loss.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from ._checks import check_choice, eval_mode
from .attack import ATTACK_CODE_VERSION, lbfgs_attack
from .cache import key_digest, save_record
from .config import cache_dir, default_device, resolve_profile
from .data import SUBSETS
from .models import ZooModel, build
from .progress import record_work
from .train import cache_key, fit, fresh_start, load_model_record, model_record, settings_for

# Attack settings for making pool examples: a cheaper search than the tables use.
POOL_ATTACK = {"search_steps": 4, "max_iter": 40, "c_init": 1.0, "polish": 0}  # a pool needs no polish


@dataclass
class AdversarialPool:
    """A pool of adversarial examples with their true labels.

    x [P, ...] images (or hidden activations [P, units], see ``layer``), y [P] true labels,
    made_at [P] the training step each was made at,
    adversarial_when_made [P] bool (the model misclassified it at that step), plus a log of
    refreshes: (step, number replaced, share adversarial among the new ones).
    """

    x: torch.Tensor
    y: torch.Tensor
    made_at: torch.Tensor
    adversarial_when_made: torch.Tensor
    log: list = field(default_factory=list)
    layer: int = 0  # 0: images; k ≥ 1: activations of the k-th sigmoid hidden layer

    def __len__(self) -> int:
        return len(self.y)


def split_at_hidden_layer(model: ZooModel, layer: int) -> tuple[nn.Module, nn.Module]:
    """(lower, upper) with model(x) = upper(lower(x)), cut after the ``layer``-th sigmoid
    hidden layer of ``model`` (``layer`` = 0: lower is the identity, upper the whole model).

    lower maps images [N, 1, 28, 28] to that layer's activations [N, units] in (0, 1); both
    share the model's parameters. A ValueError names the valid layers.
    """
    modules = list(model.body) + list(model.head)
    cuts = [i + 1 for i, module in enumerate(modules) if isinstance(module, nn.Sigmoid)]
    if not isinstance(layer, int) or isinstance(layer, bool) or not 0 <= layer <= len(cuts):
        valid = f"0..{len(cuts)}" if cuts else "0 (it has no sigmoid hidden layers)"
        raise ValueError(f"layer must be one of {valid} for {getattr(model, 'name', 'this model')}, got {layer!r}")
    if layer == 0:
        return nn.Identity(), model
    cut = cuts[layer - 1]
    return nn.Sequential(*modules[:cut]), nn.Sequential(*modules[cut:])


def make_adversarial(model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                     attack_options: dict | None = None, layer: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial versions of (x, y) for ``model``: each image pushed towards a random wrong
    label with ``lbfgs_attack``. Returns (x_adv, misclassified-by-model now [N] bool).

    ``layer`` = k ≥ 1: the examples are hidden activations instead, h + r [N, units] in [0, 1]
    with h the output of the k-th sigmoid layer, adversarial for the layers above it.
    """
    options = {**POOL_ATTACK, **(attack_options or {})}
    shift = torch.randint(1, 10, (len(y),), generator=generator).to(y.device)
    target = (y + shift) % 10
    lower, upper = split_at_hidden_layer(model, layer) if layer else (nn.Identity(), model)
    with eval_mode(model):
        with torch.no_grad():
            start = lower(x)
        result = lbfgs_attack(upper, start, target, **options)
        with torch.no_grad():
            wrong = upper(result.x_adv).argmax(1) != y
    return result.x_adv, wrong


def new_pool(model, x, y, size: int, generator, step: int = 0, attack_options=None, layer: int = 0) -> AdversarialPool:
    """A pool of ``size`` adversarial examples of random training images (of their
    ``layer``-th hidden activations when ``layer`` ≥ 1)."""
    pick = torch.randperm(len(x), generator=generator)[:size].to(x.device)
    x_adv, wrong = make_adversarial(model, x[pick], y[pick], generator, attack_options, layer)
    pool = AdversarialPool(x=x_adv, y=y[pick].clone(), made_at=torch.full((size,), step, dtype=torch.long),
                           adversarial_when_made=wrong.cpu(), layer=layer)
    pool.log.append((step, size, wrong.float().mean().item()))
    return pool


def refresh(pool: AdversarialPool, model, x, y, fraction: float, generator, step: int, attack_options=None) -> torch.Tensor:
    """Replace a random ``fraction`` of the pool (rounded, at least one) by new adversarial
    examples of random training images for the current ``model`` (at the pool's layer).
    Returns the replaced slots."""
    count = max(1, round(fraction * len(pool)))
    slots = torch.randperm(len(pool), generator=generator)[:count]
    pick = torch.randperm(len(x), generator=generator)[:count].to(x.device)
    x_adv, wrong = make_adversarial(model, x[pick], y[pick], generator, attack_options, pool.layer)
    device_slots = slots.to(pool.x.device)
    pool.x[device_slots] = x_adv
    pool.y[device_slots] = y[pick]
    pool.made_at[slots] = step
    pool.adversarial_when_made[slots] = wrong.cpu()
    pool.log.append((step, count, wrong.float().mean().item()))
    return slots


@dataclass(frozen=True)
class PoolSettings:
    """The pool's size, how much of it is replaced and how often, and how much is mixed in."""

    pool_size: int = 2000
    refresh_fraction: float = 0.1
    refresh_every: int = 200  # training steps (minibatches) between refreshes
    pool_batch: int = 32  # pool examples mixed into each minibatch
    layer: int | tuple = 0  # 0: input pool; k ≥ 1: k-th hidden layer; a tuple: a pool at each


POOL_PROFILES = {
    "quick": PoolSettings(pool_size=500, refresh_fraction=0.2, refresh_every=300, pool_batch=32),
    "gpu": PoolSettings(pool_size=2_000, refresh_fraction=0.1, refresh_every=200, pool_batch=64),
    "paper": PoolSettings(pool_size=10_000, refresh_fraction=0.1, refresh_every=200, pool_batch=64),
}


def _pool_schema(model: ZooModel, settings: PoolSettings) -> dict:
    """The shapes a cached pool of ``settings`` for ``model`` must have."""
    lower, _ = split_at_hidden_layer(model, settings.layer)
    with torch.no_grad():
        example_shape = tuple(lower(torch.zeros(1, 1, 28, 28)).shape[1:])
    size = settings.pool_size
    return {"x": (torch.float32, (size, *example_shape)), "y": (torch.int64, (size,)),
            "made_at": (torch.int64, (size,)), "adversarial_when_made": (torch.bool, (size,)),
            "log": list, "layer": int}


def adversarial_pool_training(name: str = "FC100-100-10", pool_size: int | None = None,
                              refresh_fraction: float | None = None, *, refresh_every: int | None = None,
                              pool_batch: int | None = None, layer: int | tuple | str = 0, subset: str = "train",
                              seed: int = 0,
                              profile: str | None = None, device=None, use_cache: bool = True) -> ZooModel:
    """Train ``name`` with weight decay and an adversarial pool mixed into every minibatch.

    The pool starts once the model has trained for one epoch without it (adversarial
    examples of an untrained model are meaningless), then is refreshed every
    ``refresh_every`` steps. Sizes default to the profile's ``POOL_PROFILES``. Cached like
    every trained model; ``model.pool`` is the final pool (with its refresh log) and
    ``model.training_info`` the settings and time. ``layer`` = k ≥ 1 keeps the pool at the
    k-th sigmoid hidden layer instead of the input (the paper's per-layer variant; see the
    module docstring). ``layer`` = a tuple of layers, or "all" (the input and every hidden
    layer), keeps one pool per layer together, each refreshed on the same schedule and each
    mixing ``pool_batch`` examples into every minibatch; ``model.pools`` maps layer → pool.
    """
    check_choice("subset", subset, [s for s in SUBSETS if s != "test"])
    profile = resolve_profile(profile)
    base = POOL_PROFILES[profile]
    pool_settings = PoolSettings(
        pool_size=base.pool_size if pool_size is None else pool_size,
        refresh_fraction=base.refresh_fraction if refresh_fraction is None else refresh_fraction,
        refresh_every=base.refresh_every if refresh_every is None else refresh_every,
        pool_batch=base.pool_batch if pool_batch is None else pool_batch,
        layer=layer if isinstance(layer, int) else _check_layers(name, layer),
    )
    if not isinstance(pool_settings.pool_size, int) or pool_settings.pool_size < 1:
        raise ValueError(f"pool_size must be a positive int, got {pool_settings.pool_size!r}")
    if not 0 < pool_settings.refresh_fraction <= 1:
        raise ValueError(f"refresh_fraction must be in (0, 1], got {pool_settings.refresh_fraction!r}")
    for argument in ("refresh_every", "pool_batch"):
        value = getattr(pool_settings, argument)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{argument} must be a positive int, got {value!r}")
    layers = _check_layers(name, layer)
    settings = settings_for(name, profile)
    device = torch.device(device) if device is not None else default_device()
    key = cache_key(name, subset, seed, settings, pool=asdict(pool_settings), attack=POOL_ATTACK,
                    attack_code=ATTACK_CODE_VERSION)
    path = cache_dir() / "models" / f"{name}-pool-{subset}-{key_digest(key)}.pt"
    model = build(name)
    schema = {"pools": {f"layer{k}": _pool_schema(model, replace(pool_settings, layer=k)) for k in layers}}
    stored = load_model_record(model, path, key, schema) if use_cache else None
    if stored is not None:
        model.pools = {k: AdversarialPool(**stored["pools"][f"layer{k}"]) for k in layers}
        model.pool = model.pools[layers[0]]
        return model.to(device).eval()
    model, x, y, generator = fresh_start(name, subset, seed, device)
    steps_per_epoch = math.ceil(len(x) / settings.batch_size)
    uppers = {k: split_at_hidden_layer(model, k)[1] for k in layers}
    pools: dict[int, AdversarialPool] = {}

    def extra(step: int):
        if step < steps_per_epoch:
            return None
        batches = []
        for k in layers:
            if k not in pools:
                pools[k] = new_pool(model, x, y, pool_settings.pool_size, generator, step, layer=k)
            elif (step - steps_per_epoch) % pool_settings.refresh_every == 0:
                refresh(pools[k], model, x, y, pool_settings.refresh_fraction, generator, step)
            pick = torch.randint(0, len(pools[k]), (pool_settings.pool_batch,), generator=generator)
            pick = pick.to(device)
            entry = (pools[k].x[pick], pools[k].y[pick])
            batches.append(entry + (uppers[k],) if k else entry)
        return batches[0] if len(layers) == 1 else batches

    start = time.perf_counter()
    fit(model, x, y, settings, seed=seed, extra_batches=extra)
    info = {"key": key, "seconds": time.perf_counter() - start, "device": str(device)}
    record_work("pool", info["seconds"], model=name, samples=len(x), epochs=settings.epochs,
                pool_size=pool_settings.pool_size, refresh_every=pool_settings.refresh_every,
                refresh_fraction=pool_settings.refresh_fraction, device=str(device))
    if use_cache and len(pools) == len(layers):
        saved = {f"layer{k}": {"x": p.x.cpu(), "y": p.y.cpu(), "made_at": p.made_at, "log": p.log,
                               "layer": p.layer, "adversarial_when_made": p.adversarial_when_made}
                 for k, p in pools.items()}
        save_record(model_record(model, info, pools=saved), path)
    model.training_info = info
    model.pools = pools
    model.pool = pools.get(layers[0])
    return model.eval()


def _check_layers(name: str, layer) -> tuple[int, ...]:
    """``layer`` as a tuple of distinct valid layers for ``name`` (an int, a sequence, or
    "all": the input and every sigmoid hidden layer)."""
    if layer == "all":
        lower_count = sum(isinstance(m, nn.Sigmoid) for m in build(name).modules())
        return tuple(range(lower_count + 1))
    layers = (layer,) if isinstance(layer, int) and not isinstance(layer, bool) else tuple(layer)
    if not layers or len(set(layers)) != len(layers):
        raise ValueError(f"layer must be an int, 'all' or distinct ints, got {layer!r}")
    for k in layers:
        split_at_hidden_layer(build(name), k)  # a ValueError naming the valid layers
    return layers
