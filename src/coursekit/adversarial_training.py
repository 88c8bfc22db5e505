"""Adversarial examples as training data (§4.2) and the Lipschitz regulariser (§4.3).

The paper trained a 100-100-10 network "by keeping a pool of adversarial examples a random
subset of which is continuously replaced by newly generated adversarial examples and which
is mixed into the original training set all the time", reaching a test error below 1.2%
(1.6% with weight decay alone, about 1.3% with dropout). This is hard-negative mining with
examples the model itself gets wrong.

``AdversarialPool`` holds the pool: adversarial images with their *true* labels. ``refresh``
replaces a random ``refresh_fraction`` of it by fresh examples made with ``lbfgs_attack`` for
the current model (each towards a random wrong label; ``POOL_ATTACK``: the paper's penalty
method and search over c, ``polish=0``), recording for each new example whether it was
adversarial for the model at the time it was made. ``train_with_pools`` mixes ``pool_batch``
pool examples into every minibatch and refreshes the pool every ``refresh_every`` steps;
``adversarial_pool_training`` runs it on a zoo model and caches the result.

The paper also reports that adversarial examples of the *hidden* layers helped more than those
of the input. ``layer=k`` (k ≥ 1) keeps such a pool instead: for training images x it takes the
output h = φ_k(x) of the k-th sigmoid hidden layer, attacks the layers above it (``upper``, see
``split_at_hidden_layer``) within the activations' box [0, 1], and trains only those layers on
the resulting h + r with the true labels (the layers below see the clean images only). It needs
sigmoid hidden layers, whose outputs lie in [0, 1] like pixels; ReLU layers have no such box.
``layer="all"`` (or a tuple of layers) keeps a pool at each of those layers together: every
pool is refreshed on the same schedule and mixed into every minibatch. That is our reading, not
the paper's stated procedure: the paper trained "in an alternating fashion, maintaining and
updating a pool of adversarial examples for each layer separately" and does not say how the
pools enter the minibatches, nor their size, refresh rate or mixing ratio.

The Lipschitz regulariser is ``train(name, lipschitz=weight)``: the sum of the layers'
operator norms (``coursekit.train.lipschitz_penalty``) added to the loss.

The paper's claim is judged as a change against the same network: ``pools_by_seed`` trains it
with weight decay alone and with pools for each seed (the chapter's table and its recorded
larger run, ``benchmarks/records/06_adversarial_training.py``), ``paired_change`` tests it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._checks import check_choice, check_int, eval_mode
from .attack import ATTACK_CODE_VERSION, lbfgs_attack
from .config import PROFILES, profile_sizes, resolve_profile
from .data import SUBSETS, load_mnist
from .models import ZooModel, build
from .records import modules_version
from .train import TrainingRun, TrainSettings, cache_key, cached_training, evaluate, fit, settings_for, train

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    import numpy as np
    import pandas as pd


__all__ = [
    "POOL_ATTACK",
    "POOL_CODE_VERSION",
    "POOL_PROFILES",
    "adversarial_pool_training",
    "AdversarialPool",
    "make_adversarial",
    "new_pool",
    "one_cpu_thread",
    "paired_change",
    "pools_by_seed",
    "PoolSettings",
    "refresh",
    "refresh_pool",
    "split_at_hidden_layer",
    "train_with_pools",
]

# Attack settings for making pool examples: the paper's penalty method and search over c
# (polish=0: no linearised step), with a cheaper search than the tables use, and each example
# walked back along r to the decision boundary (lbfgs_attack's default refine=True; ours).
POOL_ATTACK = {"search_steps": 4, "max_iter": 40, "c_init": 1.0, "polish": 0, "refine": True}
# The hash of this module's code and of everything it imports (the attack, the training; ``records.
# modules_version``): part of the pools' cache key, so that a changed statement rebuilds them.
POOL_CODE_VERSION = modules_version("adversarial_training")


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

    Used in chapter 6 (book/06_adversarial_training.md).
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


def make_adversarial(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    attack_options: dict | None = None,
    layer: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial versions of (x, y) for ``model``: each image pushed towards a random wrong
    label with ``lbfgs_attack``. Returns (x_adv, misclassified-by-model now [N] bool).

    ``layer`` = k ≥ 1: the examples are hidden activations instead, h + r [N, units] in [0, 1]
    with h the output of the k-th sigmoid layer, adversarial for the layers above it.

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    options = {**POOL_ATTACK, **(attack_options or {})}
    shift = torch.randint(1, 10, (len(y),), generator=generator).to(y.device)
    target = (y + shift) % 10
    lower, upper = split_at_hidden_layer(model, layer) if layer else (nn.Identity(), model)  # type: ignore[arg-type]
    with eval_mode(model):
        with torch.no_grad():
            start = lower(x)
        result = lbfgs_attack(upper, start, target, **options)
        with torch.no_grad():
            wrong = upper(result.x_adv).argmax(1) != y
    return result.x_adv, wrong


def new_pool(
    model: ZooModel,
    x: torch.Tensor,
    y: torch.Tensor,
    size: int,
    generator: torch.Generator,
    step: int = 0,
    attack_options: dict[str, Any] | None = None,
    layer: int = 0,
) -> AdversarialPool:
    """A pool of ``size`` adversarial examples of random training images (of their
    ``layer``-th hidden activations when ``layer`` ≥ 1).

    Made as a refresh of every slot of an empty pool (``refresh`` with fraction 1), so it draws
    what a refresh draws: a random order of the slots, then ``size`` distinct training images.
    """
    check_int("size", size, maximum=len(x))  # at most the training images
    lower = split_at_hidden_layer(model, layer)[0] if layer else nn.Identity()
    with torch.no_grad():
        shape = tuple(lower(x[:1]).shape[1:])
    pool = AdversarialPool(
        x=torch.zeros(size, *shape, dtype=x.dtype, device=x.device),
        y=torch.zeros(size, dtype=y.dtype, device=y.device),
        made_at=torch.full((size,), step, dtype=torch.long),
        adversarial_when_made=torch.zeros(size, dtype=torch.bool),
        layer=layer,
    )
    refresh(pool, model, x, y, 1.0, generator, step, attack_options)
    return pool


def refresh_pool(
    pool_x: torch.Tensor,
    pool_y: torch.Tensor,
    slots: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack: Callable[..., torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pool (pool_x [P, ...], pool_y [P]) with its entries ``slots`` [n] replaced: copies,
    holding ``attack(images, labels)`` [n, ...] at ``slots`` and the *true* ``labels`` [n]
    (a pool teaches the right answer for the adversarial example). The arguments are left
    unchanged. The step of ``refresh`` (chapter 6 writes its update with it).

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    if len(slots) != len(images) or len(images) != len(labels):
        raise ValueError(
            f"slots, images and labels must have the same length, got {len(slots)}, {len(images)}, {len(labels)}"
        )
    new_x, new_y = pool_x.clone(), pool_y.clone()
    new_x[slots] = attack(images, labels)
    new_y[slots] = labels
    return new_x, new_y


def refresh(
    pool: AdversarialPool,
    model: ZooModel,
    x: torch.Tensor,
    y: torch.Tensor,
    fraction: float,
    generator: torch.Generator,
    step: int,
    attack_options: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Replace a random ``fraction`` of the pool (rounded, at least one) by new adversarial
    examples of random training images for the current ``model`` (at the pool's layer).
    Returns the replaced slots. The draws from ``generator``, in order: the slots (a random
    permutation of the pool, first ``count``), the training images (``count`` distinct ones),
    then the attack's random wrong labels (``make_adversarial``)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    count = max(1, round(fraction * len(pool)))
    slots = torch.randperm(len(pool), generator=generator)[:count]
    pick = torch.randperm(len(x), generator=generator)[:count].to(x.device)
    made = {}

    def attack(images, labels):
        made["x"], made["wrong"] = make_adversarial(model, images, labels, generator, attack_options, pool.layer)
        return made["x"]

    pool.x, pool.y = refresh_pool(pool.x, pool.y, slots.to(pool.x.device), x[pick], y[pick], attack)
    wrong = made["wrong"]
    pool.made_at[slots] = step
    pool.adversarial_when_made[slots] = wrong.cpu()
    pool.log.append((step, count, wrong.float().mean().item()))
    return slots


@dataclass(frozen=True)
class PoolSettings:
    """The pool's size, how much of it is replaced and how often, and how much is mixed in.

    Used in chapter 6 (book/06_adversarial_training.md).
    """

    pool_size: int = 2000
    refresh_fraction: float = 0.1
    refresh_every: int = 200  # training steps (minibatches) between refreshes
    pool_batch: int = 32  # pool examples mixed into each minibatch
    layer: int | tuple = 0  # 0: input pool; k ≥ 1: k-th hidden layer; a tuple: a pool at each


# The pools' sizes per profile, kept for chapter 6: ``config.profile_sizes("pools", profile)``.
POOL_PROFILES = MappingProxyType({profile: PoolSettings(**profile_sizes("pools", profile)) for profile in PROFILES})


def _check_pool_settings(settings: PoolSettings) -> None:
    """A ValueError naming the first setting of ``settings`` out of its range."""
    check_int("pool_size", settings.pool_size)
    if not 0 < settings.refresh_fraction <= 1:
        raise ValueError(f"refresh_fraction must be in (0, 1], got {settings.refresh_fraction!r}")
    for argument in ("refresh_every", "pool_batch"):
        check_int(argument, getattr(settings, argument))


def _pool_schema(model: ZooModel, settings: PoolSettings) -> dict:
    """The shapes a cached pool of ``settings`` for ``model`` must have."""
    lower, _ = split_at_hidden_layer(model, settings.layer)  # type: ignore[arg-type]
    with torch.no_grad():
        example_shape = tuple(lower(torch.zeros(1, 1, 28, 28)).shape[1:])
    size = settings.pool_size
    return {
        "x": (torch.float32, (size, *example_shape)),
        "y": (torch.int64, (size,)),
        "made_at": (torch.int64, (size,)),
        "adversarial_when_made": (torch.bool, (size,)),
        "log": list,
        "layer": int,
    }


def adversarial_pool_training(
    name: str = "FC100-100-10",
    pool_size: int | None = None,
    refresh_fraction: float | None = None,
    *,
    refresh_every: int | None = None,
    pool_batch: int | None = None,
    layer: int | tuple | str = 0,
    subset: str = "train",
    seed: int = 0,
    profile: str | None = None,
    device: torch.device | str | None = None,
    use_cache: bool = True,
) -> ZooModel:
    """Train ``name`` with weight decay and an adversarial pool mixed into every minibatch.

    The pool starts once the model has trained for one epoch without it (adversarial
    examples of an untrained model are meaningless), then is refreshed every
    ``refresh_every`` steps. Sizes default to the profile's ``POOL_PROFILES``. Cached like
    every trained model; ``model.pool`` is the final pool (with its refresh log) and
    ``model.training_info`` the settings and time. ``layer`` = k ≥ 1 keeps the pool at the
    k-th sigmoid hidden layer instead of the input (see the module docstring). ``layer`` = a
    tuple of layers, or "all" (the input and every hidden layer), keeps one pool per layer
    together, each refreshed on the same schedule and each mixing ``pool_batch`` examples into
    every minibatch (ours; the paper's pools per layer are described in the module docstring);
    ``model.pools`` maps layer → pool. The training itself: ``train_with_pools``.

    Used in chapters 6 (book/06_adversarial_training.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    check_choice("subset", subset, [s for s in SUBSETS if s != "test"])
    profile = resolve_profile(profile)
    given = {"pool_size": pool_size, "refresh_fraction": refresh_fraction, "refresh_every": refresh_every}
    pool_settings, layers = _pool_settings(name, profile, layer, **given, pool_batch=pool_batch)
    settings = settings_for(name, profile)
    pool_key = {"pool": asdict(pool_settings), "attack": POOL_ATTACK, "attack_code": ATTACK_CODE_VERSION}
    key = cache_key(name, subset, seed, settings, **pool_key, pool_code=POOL_CODE_VERSION)
    with torch.random.fork_rng(devices=[]):  # a model only for the shapes: the global generator is left as it was
        shapes = build(name)
    schema = {"pools": {f"layer{k}": _pool_schema(shapes, replace(pool_settings, layer=k)) for k in layers}}

    def run(model: ZooModel, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> TrainingRun:
        pools = train_with_pools(model, x, y, settings, pool_settings, seed=seed, generator=generator)
        return TrainingRun(saved={"pools": {f"layer{k}": _pool_record(p) for k, p in pools.items()}}, result=pools)

    fields = {
        "epochs": settings.epochs,
        **{k: getattr(pool_settings, k) for k in ("pool_size", "refresh_every", "refresh_fraction")},
    }
    work = ("pool", fields)
    cached = cached_training(
        name, subset, seed, key, run, tag="pool-", device=device, use_cache=use_cache, extra_schema=schema, work=work
    )
    model = cached.model
    if cached.stored is not None:
        model.pools = {k: AdversarialPool(**cached.stored["pools"][f"layer{k}"]) for k in layers}
    else:
        model.pools = cached.run.result  # type: ignore[union-attr]
    model.pool = model.pools[layers[0]]
    return model


def _pool_settings(
    name: str, profile: str, layer: int | tuple | str, **given: int | float | None
) -> tuple[PoolSettings, tuple[int, ...]]:
    """The profile's ``POOL_PROFILES`` with the sizes ``given`` (None: the profile's) and
    ``layer``, checked; and the layers as a tuple."""
    layers = _check_layers(name, layer)  # each check builds the model (the global generator advances as it did)
    chosen = layer if isinstance(layer, int) else _check_layers(name, layer)
    overrides = {k: v for k, v in given.items() if v is not None}
    pool_settings = replace(POOL_PROFILES[profile], **overrides, layer=chosen)  # type: ignore[arg-type]
    _check_pool_settings(pool_settings)
    return pool_settings, layers


def _pool_record(pool: AdversarialPool) -> dict:
    """What the cache keeps of a pool (tensors on the CPU)."""
    return {
        "x": pool.x.cpu(),
        "y": pool.y.cpu(),
        "made_at": pool.made_at,
        "log": pool.log,
        "layer": pool.layer,
        "adversarial_when_made": pool.adversarial_when_made,
    }


def train_with_pools(
    model: ZooModel,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainSettings,
    pool_settings: PoolSettings,
    *,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> dict[int, AdversarialPool]:
    """Train ``model`` in place (minibatch Adam, ``coursekit.train.fit``) with adversarial pools
    mixed into every minibatch; returns {layer: final pool}.

    x [N, 1, 28, 28] in [0, 1] and y [N] are on the model's device. The minibatch order is
    drawn as ``train`` draws it (a generator seeded ``seed``). Step s = 0, 1, … counts
    minibatches; E = ceil(N / batch_size) is one epoch. Steps s < E train on the images alone.
    At s = E each layer's pool is made (``new_pool``); at s = E + j·refresh_every (j ≥ 1) a
    ``refresh_fraction`` of it is replaced (``refresh``); at every s ≥ E, ``pool_batch``
    examples drawn with replacement from each pool join the minibatch, after the pool's update.
    All the pools' draws, in layer order, come from ``generator`` (default: seeded ``seed + 1``,
    as ``fresh_start`` seeds it). Refuses settings that would train without a pool (L-BFGS, or
    fewer than two epochs).

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    _check_pool_settings(pool_settings)
    if settings.optimizer != "adam" or settings.epochs < 2:
        raise ValueError(
            "settings must use Adam for at least 2 epochs (the pools start after the "
            f"first), got optimizer={settings.optimizer!r}, epochs={settings.epochs}"
        )
    layers = pool_settings.layer if isinstance(pool_settings.layer, tuple) else (pool_settings.layer,)
    generator = torch.Generator().manual_seed(seed + 1) if generator is None else generator
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
            pick = pick.to(x.device)
            entry = (pools[k].x[pick], pools[k].y[pick])
            batches.append(entry + (uppers[k],) if k else entry)
        return batches[0] if len(layers) == 1 else batches

    fit(model, x, y, settings, seed=seed, extra_batches=extra)
    return pools


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


@contextmanager
def one_cpu_thread() -> Iterator[None]:
    """Run the block with torch on one CPU thread; then the caller's thread count again.

    A floating-point sum depends on its order, and torch splits sums between threads, so two
    runs of the same training agree bit for bit only on the same thread count (chapter 6
    compares its plain loop with ``train_with_pools`` so). The chapter asks for it; no library
    function changes the count (``config.apply_cpu_threads`` chose it at set-up), so none
    changes it inside the block. The count before the block is restored after it, also when
    the block raises.

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def paired_change(
    baseline: Sequence[float] | np.ndarray,
    pooled: Sequence[float] | np.ndarray,
    paper_change: float,
    alpha: float = 0.05,
) -> dict:
    """The paper's claim as a change against the same network, paired by training seed.

    ``baseline``, ``pooled``: test errors in [0, 1] of the network trained without and with the
    pools, one per seed (the same seed: the same initialisation and minibatch order), n ≥ 2
    each; ``paper_change``: the paper's change in points (−0.4: 1.6% → below 1.2%, so a change
    of −0.4 points or less). Returns: ``n``; ``change`` (points, per seed); ``mean``, ``sd`` (the
    sample standard deviation); ``t`` and ``p`` of the two-sided paired t-test (n − 1 degrees
    of freedom; p is NaN when every change is 0); ``lower`` (seeds whose error fell);
    ``chance`` = 0.5ⁿ, the probability that every seed falls by chance alone under a fair coin;
    and ``verdict``: "reproduced" (p < alpha, mean ≤ paper_change), "smaller than the paper's"
    (p < alpha, paper_change < mean < 0), "contradicted" (p < alpha, mean > 0) or "not shown"
    (p ≥ alpha or NaN: the change is not distinguishable from the seed-to-seed spread).

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    import numpy as np
    from scipy.stats import ttest_rel

    baseline, pooled = np.asarray(baseline, dtype=float), np.asarray(pooled, dtype=float)
    if baseline.ndim != 1 or baseline.shape != pooled.shape or len(baseline) < 2:
        raise ValueError(
            f"baseline and pooled must be 1-D of the same length ≥ 2 (one error per "
            f"seed), got shapes {baseline.shape} and {pooled.shape}"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    change = 100 * (pooled - baseline)
    test = ttest_rel(pooled, baseline)
    mean, p = float(change.mean()), float(test.pvalue)
    if not p < alpha:  # NaN included
        verdict = "not shown"
    elif mean > 0:
        verdict = "contradicted"
    else:
        verdict = "reproduced" if mean <= paper_change else "smaller than the paper's"
    return {
        "n": len(change),
        "change": change,
        "mean": mean,
        "sd": float(change.std(ddof=1)),
        "t": float(test.statistic),
        "p": p,
        "lower": int((change < 0).sum()),
        "chance": 0.5 ** len(change),
        "verdict": verdict,
    }


def pools_by_seed(
    seeds: Sequence[int], name: str = "FC100-100-10", profile: str | None = None, layer: int | tuple | str = "all"
) -> pd.DataFrame:
    """The paper's §4.2 comparison, paired by training seed: ``name``'s test error (a fraction
    of all 10,000 test images) trained with weight decay alone ("weight decay", ``train``) and
    with adversarial pools at ``layer`` ("pools", ``adversarial_pool_training``), one row per
    seed ("seed 0", …), both cached like every trained model. The same seed gives both networks
    the same initialisation and minibatch order, so the rows are pairs; "change (points)" is
    100 × (pools − weight decay). ``seeds``: at least two distinct ints ≥ 0 (``paired_change``
    needs two).

    Used in chapter 6 (book/06_adversarial_training.md).
    """
    seeds = tuple(seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be at least two distinct ints >= 0, got {seeds!r}")
    import pandas as pd

    x_test, y_test = load_mnist("test")
    rows = {}
    for seed in seeds:
        plain = train(name, seed=seed, profile=profile)
        pooled = adversarial_pool_training(name, layer=layer, seed=seed, profile=profile)
        rows[f"seed {seed}"] = {
            "weight decay": evaluate(plain, x_test, y_test),
            "pools": evaluate(pooled, x_test, y_test),
        }
    table = pd.DataFrame(rows).T
    table["change (points)"] = 100 * (table["pools"] - table["weight decay"])
    table.index.name = "training seed"
    return table
