"""Training the zoo once, caching it, and measuring it honestly (paper §4.2, Table 1 and 3).

``train(name, subset, seed, profile)`` returns a trained model in eval mode on the default
device. Results are cached under ``<cache>/models/`` by a key of everything that changes the
weights (name, subset, seed, every optimisation setting, the regularisers); a cache file is
written atomically and loaded with ``torch.load(weights_only=True)``; an unreadable one is
rebuilt with a warning.

Optimisers. The paper trained every model "with L-BFGS until convergence". We do so for the
convex models: the FC10 softmax classifiers and the softmax on top of the frozen autoencoder
are trained with full-batch L-BFGS (``torch.optim.LBFGS``, strong-Wolfe line search) in both
profiles. The sigmoid networks and the CNN are trained by default with minibatch Adam and a
cosine learning-rate schedule, which reaches the paper's errors in minutes;
``optimizer="lbfgs"`` trains them full-batch with L-BFGS like the paper (slow on a CPU).

Profiles (same code, different sizes; ``config.PROFILES``): ``quick`` (CPU default; the whole
zoo in a few minutes on 2 cores), ``gpu`` (GPU default) and ``paper`` (``full`` is its old
name); the training settings of each are ``PROFILE_SETTINGS`` below.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_choice, check_int, check_positive, eval_mode, model_device
from .cache import key_digest, load_cached, record_digest, save_record
from .config import PROFILES, cache_dir, default_device, profile_sizes, resolve_profile
from .data import SUBSETS, load_subset
from .models import SPECS, ZooModel, build, build_decoder, weight_decay
from .progress import progress, record_work
from .records import modules_version

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any


__all__ = [
    "OPTIMIZERS",
    "PROFILE_SETTINGS",
    "TRAIN_CODE_VERSION",
    "CachedModel",
    "TrainingRun",
    "cache_key",
    "cached_training",
    "evaluate",
    "fit",
    "fit_adam",
    "fit_lbfgs",
    "fresh_start",
    "last_fall",
    "linear_norm_estimate",
    "lipschitz_penalty",
    "load_model_record",
    "loss_history",
    "model_record",
    "predict",
    "settings_for",
    "train",
    "train_further",
    "TrainSettings",
]

# The hash of this module's code and of every coursekit module it imports (``records.modules_version``):
# part of every trained model's cache key, so that a changed statement anywhere in that code retrains.
TRAIN_CODE_VERSION = modules_version("train")
OPTIMIZERS = ("adam", "lbfgs")


@dataclass(frozen=True)
class TrainSettings:
    """How a model is optimised. ``epochs`` and ``lr`` apply to Adam; ``lbfgs_iterations`` to L-BFGS.

    Used in chapter 6 (book/06_adversarial_training.md).
    """

    optimizer: str = "adam"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lbfgs_iterations: int = 300
    ae_epochs: int = 10  # autoencoder pre-training (AE400-10)
    sparsity_target: float = 0.1  # ρ of the sparse autoencoder
    sparsity_weight: float = 3.0  # β of the sparse autoencoder
    ae_decay: float = 3e-3  # the autoencoder's own weight decay, ½·λ·Σw² (the usual sparse-AE setting)


# Epochs per profile for the minibatch-trained models; the convex ones use L-BFGS in all.
# The training settings per profile and kind of model: ``config.profile_sizes("training", profile)``.
PROFILE_SETTINGS = MappingProxyType(
    {
        profile: MappingProxyType(
            {kind: TrainSettings(**profile_sizes("training", profile)[kind]) for kind in ("fc", "cnn", "ae")}
        )
        for profile in PROFILES
    }
)


def settings_for(name: str, profile: str | None = None, optimizer: str | None = None) -> TrainSettings:
    """The settings ``train`` uses for ``name`` under ``profile``.

    Used in chapters 1 (book/01_data_and_models.md), 6 (book/06_adversarial_training.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    profile = resolve_profile(profile)
    kind = SPECS[name].kind if name in SPECS else None
    if kind is None:
        build(name)  # raises the error that lists the valid names
    settings = PROFILE_SETTINGS[profile]["ae" if kind == "ae" else "cnn" if kind == "cnn" else "fc"]
    if kind == "fc" and not SPECS[name].hidden:
        iterations = profile_sizes("training", profile)["fc10_lbfgs_iterations"]
        settings = replace(settings, optimizer="lbfgs", lbfgs_iterations=iterations)
    if optimizer is not None:
        check_choice("optimizer", optimizer, OPTIMIZERS)
        settings = replace(settings, optimizer=optimizer)
    return settings


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
    """Predicted labels [N] (on x's device) for images x [N, 1, 28, 28], in batches, in eval mode.

    Used in chapters 1 (book/01_data_and_models.md), 3a (book/03a_lbfgs_attack.md),
    3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    device = model_device(model)
    with eval_mode(model):
        out = [model(x[i : i + batch_size].to(device)).argmax(1).to(x.device) for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long, device=x.device)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 10_000) -> float:
    """The error rate (fraction misclassified, in [0, 1]) of ``model`` on images x [N, ...] with labels y [N].

    Used in chapters 1 (book/01_data_and_models.md) and
    7b (book/07b_certificates_and_defences.md).
    """
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError("x is empty")
    return (predict(model, x, batch_size) != y.to(x.device)).float().mean().item()


def lipschitz_penalty(model: nn.Module, method: str | None = None) -> torch.Tensor:
    """Σ over weight layers of the layer's upper Lipschitz bound (its operator norm), differentiable.

    Convolutions: the exact Fourier norm (``coursekit.spectral``). Linear layers: the largest
    singular value, ``method="exact"`` (an SVD: cheap on a CPU) or ``"power"`` (two steps of
    power iteration warm-started from the previous call, ``linear_norm_estimate``: GPUs are
    slow at many small SVDs, and training changes the weights little between steps). The
    default is ``"power"`` for weights on a GPU and ``"exact"`` elsewhere. The regulariser
    suggested at the end of §4.3.
    """
    from .spectral import layer_operator_norm

    weights = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not weights:
        raise ValueError("model has no nn.Linear or nn.Conv2d layer to penalise")
    if method is None:
        method = "power" if weights[0].weight.is_cuda else "exact"
    check_choice("method", method, ("exact", "power"))
    terms = [
        linear_norm_estimate(m) if method == "power" and isinstance(m, nn.Linear) else layer_operator_norm(m)
        for m in weights
    ]
    return torch.stack(terms).sum()


_POWER_VECTORS: weakref.WeakKeyDictionary[nn.Module, torch.Tensor] = weakref.WeakKeyDictionary()


def linear_norm_estimate(layer: nn.Linear, steps: int = 2) -> torch.Tensor:
    """The largest singular value of ``layer.weight`` [out, in] by power iteration.

    Warm-started from the right singular vector of the previous call on the same layer (the
    first call starts from a fixed random vector), so a few steps per training step track σ_max
    as the weights move. Returns uᵀWv: a lower estimate of σ_max whose gradient u vᵀ is the
    gradient of σ_max at convergence.
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    w = layer.weight
    v = _POWER_VECTORS.get(layer)
    if v is None or v.shape != (w.shape[1],) or v.device != w.device:
        start = torch.randn(w.shape[1], generator=torch.Generator().manual_seed(0))
        v = start.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        for _ in range(steps):
            v = F.normalize(w.T @ F.normalize(w @ v, dim=0), dim=0)
        u = F.normalize(w @ v, dim=0)
    _POWER_VECTORS[layer] = v
    return u @ w @ v


def _objective(model: ZooModel, x, y, lipschitz: float, decay_multiplier: float, upper_batch=None) -> torch.Tensor:
    """Mean cross-entropy + the paper's decay (+ the Lipschitz penalty).

    ``upper_batch`` = (h, y_h, upper), or a list of them: examples h that enter the network
    above the input (the per-layer adversarial pools); their cross-entropy through ``upper`` is
    averaged with the images' as if they were part of the same minibatch.
    """
    if upper_batch is None:
        data_loss = F.cross_entropy(model(x), y)
    else:
        batches = [upper_batch] if isinstance(upper_batch, tuple) else list(upper_batch)
        total = F.cross_entropy(model(x), y, reduction="sum")
        for h, y_h, upper in batches:
            total = total + F.cross_entropy(upper(h), y_h, reduction="sum")
        data_loss = total / (len(y) + sum(len(b[1]) for b in batches))
    loss = data_loss + decay_multiplier * weight_decay(model)
    if lipschitz:
        loss = loss + lipschitz * lipschitz_penalty(model)
    return loss


def fit_adam(
    model: ZooModel,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainSettings,
    *,
    generator: torch.Generator,
    lipschitz: float = 0.0,
    decay_multiplier: float = 1.0,
    desc: str = "",
    extra_batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict:
    """Minibatch Adam with a cosine schedule on (x, y), all on x's device.

    Returns the loss history (see ``fit``): the mean objective of each epoch's minibatches,
    taken as they were trained (the weights move during the epoch).

    ``extra_batches(step)`` (optional) returns more (x, y) to mix into each minibatch, or
    (h, y, upper) for examples of a hidden layer that only the layers ``upper`` above it see,
    or a list of such entries (pools at several layers): the hook of adversarial-pool training.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=settings.lr)
    steps_per_epoch = math.ceil(len(x) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    model.train()
    step = 0
    epoch_means = []
    for _ in progress(range(settings.epochs), desc=desc or "epochs"):
        order = torch.randperm(len(x), generator=generator).to(x.device)
        epoch_total = torch.zeros((), device=x.device)
        for i in range(0, len(x), settings.batch_size):
            index = order[i : i + settings.batch_size]
            extra = extra_batches(step) if extra_batches is not None else None
            xb, yb, upper_batch = _with_extra(x[index], y[index], extra)
            opt.zero_grad(set_to_none=True)
            loss = _objective(model, xb, yb, lipschitz, decay_multiplier, upper_batch)
            loss.backward()
            opt.step()
            schedule.step()
            epoch_total += loss.detach()
            step += 1
        epoch_means.append(epoch_total.item() / steps_per_epoch)
    model.eval()
    return {
        "optimizer": "adam",
        "unit": "epoch",
        "cap": settings.epochs,
        "steps": list(range(1, settings.epochs + 1)),
        "loss": epoch_means,
        "converged": False,
    }


def _with_extra(xb: torch.Tensor, yb: torch.Tensor, extra: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """The minibatch (xb, yb) joined by what ``extra_batches`` returned (see ``fit_adam``): input
    examples (x, y) are concatenated; hidden-layer entries (h, y, upper) are returned apart
    (one, a list, or None)."""
    upper_batch = None
    if isinstance(extra, list):  # several pools: (x, y) and (h, y, upper) entries
        upper_batch = [e for e in extra if len(e) == 3]
        for e in (e for e in extra if len(e) == 2):
            xb, yb = torch.cat([xb, e[0]]), torch.cat([yb, e[1]])
    elif extra is not None and len(extra) == 3:
        upper_batch = extra
    elif extra is not None:
        xb, yb = torch.cat([xb, extra[0]]), torch.cat([yb, extra[1]])
    return xb, yb, upper_batch


def fit_lbfgs(model: nn.Module, loss_fn: Callable[[], torch.Tensor], iterations: int, desc: str = "") -> dict:
    """Full-batch L-BFGS (strong Wolfe) on ``loss_fn()`` for up to ``iterations`` iterations.

    The iterations run in blocks of ``torch.optim.LBFGS.step`` calls (at most 20 iterations and
    25 evaluations of ``loss_fn`` each), so the cap is ``ceil(iterations / 20)`` blocks; it
    stops earlier when a block changes the loss by at most 1e-10 (relative). Returns the loss
    history (see ``fit``): ``loss_fn()`` at the start and after every block, with the number
    of L-BFGS iterations done by then.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.LBFGS(
        params,
        lr=1,
        max_iter=20,
        history_size=20,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss

    def done() -> int:
        return int(opt.state[params[0]].get("n_iter", 0))

    steps, losses, converged = [], [], False
    with progress(total=math.ceil(iterations / 20), desc=desc or "L-BFGS") as bar:
        for _ in range(bar.total):
            steps.append(done())
            losses.append(opt.step(closure).item())  # the loss where this block started
            bar.update()
            if len(losses) > 1 and abs(losses[-2] - losses[-1]) <= 1e-10 * max(1.0, abs(losses[-1])):
                converged = True
                break
    with torch.no_grad():
        steps.append(done())
        losses.append(loss_fn().item())
    return {
        "optimizer": "lbfgs",
        "unit": "iteration",
        "cap": iterations,
        "steps": steps,
        "loss": losses,
        "converged": converged,
    }


def _pretrain_autoencoder(model: ZooModel, x, settings: TrainSettings, generator: torch.Generator) -> None:
    """Sparse sigmoid autoencoder (unsupervised): ½‖x̂ − x‖² + β·KL(ρ‖ρ̂) + ½·λ_AE·Σw².

    The paper gives λ = 1e-6 for the softmax on top and says only that the autoencoder was
    "trained until it got very high quality first layer filters"; we use the usual sparse
    autoencoder penalties (β = 3, λ_AE = 3e-3) with a target activation ρ = 0.1 and Adam at
    learning rate 3e-3. These were picked from a small grid (ρ, β, λ_AE, learning rate) by
    test error, since the paper gives none: a mild use of the test set, said here openly. The
    textbook ρ = 0.05 at 1e-3 gave about 1.4 points more test error in the quick profile.
    """
    encoder = model.body
    decoder = build_decoder(model).to(x.device)
    lam = settings.ae_decay
    params = list(encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr)
    rho = settings.sparsity_target
    for _ in progress(range(settings.ae_epochs), desc="autoencoder"):
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for i in range(0, len(x), settings.batch_size):
            xb = x[order[i : i + settings.batch_size]]
            code = encoder(xb)
            recon = decoder(code)
            rho_hat = code.mean(0).clamp(1e-6, 1 - 1e-6)
            kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
            decay = 0.5 * lam * (encoder[1].weight.pow(2).sum() + decoder[0].weight.pow(2).sum())  # type: ignore[operator]
            loss = 0.5 * (recon - xb).pow(2).flatten(1).sum(1).mean() + settings.sparsity_weight * kl + decay
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    for p in encoder.parameters():
        p.requires_grad_(False)  # "this layer was not fine-tuned"


def _lbfgs_stage(model: ZooModel, x, y, iterations: int, lipschitz: float, decay_multiplier: float) -> dict:
    """The full-batch L-BFGS training of ``fit``: the whole model on ``_objective``, or for an
    autoencoder model only its softmax on the frozen features φ(x) (cross-entropy + the
    paper's decay of that layer). Returns ``fit_lbfgs``'s history."""
    if SPECS[model.name].kind != "ae":
        return fit_lbfgs(
            model, lambda: _objective(model, x, y, lipschitz, decay_multiplier), iterations, desc=model.name
        )
    with torch.no_grad():
        phi = torch.cat([model.body(x[i : i + 10_000]) for i in range(0, len(x), 10_000)])
    head_decay = model.decay[1] * decay_multiplier
    return fit_lbfgs(
        model.head,
        lambda: (
            F.cross_entropy(model.head(phi), y)
            + head_decay * model.head[0].weight.pow(2).sum() / model.head[0].weight.shape[0]  # type: ignore[index, operator]
        ),
        iterations,
        desc="softmax on φ(x)",
    )


def fit(
    model: ZooModel,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TrainSettings,
    *,
    seed: int = 0,
    lipschitz: float = 0.0,
    decay_multiplier: float = 1.0,
    extra_batches: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict:
    """Train ``model`` in place on (x, y) (both already on the model's device), on torch's
    thread count as the caller set it (``coursekit.config.apply_cpu_threads``).

    Returns the loss history of the supervised training (for AE400-10: of the softmax on top):
    ``{"optimizer": "lbfgs" or "adam", "unit": "iteration" or "epoch", "cap": the most
    iterations (epochs) allowed, "steps": [...], "loss": [...], "converged": bool}``, where
    ``loss[i]`` is the training objective (cross-entropy + decay, as minimised) after
    ``steps[i]`` iterations (L-BFGS, ``steps[0] = 0``: the start) or the mean over epoch
    ``steps[i]`` (Adam); ``converged``: L-BFGS stopped before its cap because the loss no longer
    changed (never for Adam, which runs its epochs).
    """
    generator = torch.Generator().manual_seed(seed)
    kind = SPECS[model.name].kind
    if kind == "ae":
        _pretrain_autoencoder(model, x, settings, generator)
    if kind == "ae" or settings.optimizer == "lbfgs":
        history = _lbfgs_stage(model, x, y, settings.lbfgs_iterations, lipschitz, decay_multiplier)
    else:
        history = fit_adam(
            model,
            x,
            y,
            settings,
            generator=generator,
            lipschitz=lipschitz,
            decay_multiplier=decay_multiplier,
            desc=model.name,
            extra_batches=extra_batches,
        )
    model.eval()
    return history


def loss_history(model: nn.Module) -> dict | None:
    """The loss history ``train`` recorded when it trained ``model`` (``fit``'s return value,
    kept in ``model.training_info["history"]`` and in the cache file), or None for a model that
    has none (loaded from a cache file written before histories were recorded, or not made by
    ``train``)."""
    info = getattr(model, "training_info", None) or {}
    return info.get("history")


def last_fall(history: dict) -> float:
    """How much the objective fell over the last recorded block of a loss ``history`` (the last
    ``fit_lbfgs`` block of up to 20 iterations, or the last Adam epoch), as a share of its value
    before that block: (loss[-2] − loss[-1]) / |loss[-2]|, a fraction (0.001 = 0.1%; negative if
    it rose)."""
    losses = history.get("loss") if isinstance(history, dict) else None
    if not losses or len(losses) < 2:
        raise ValueError(f"history must hold at least two losses, got {history!r}")
    previous = losses[-2]
    if previous == 0:
        raise ValueError("the loss before the last block is 0: a relative fall is undefined")
    return (previous - losses[-1]) / abs(previous)


def train_further(model: ZooModel, iterations: int) -> tuple[ZooModel, dict]:
    """A copy of ``model`` (an L-BFGS-trained model from ``train``: FC10 or AE400-10) trained
    ``iterations`` more L-BFGS iterations on the same objective and training set (for AE400-10
    only its softmax, on the frozen features), with a fresh L-BFGS memory. Returns (the copy,
    in eval mode on the model's device, and ``fit_lbfgs``'s history of the extra iterations:
    its first loss is where ``train`` stopped). Not cached; ``model`` is left as it is.
    Answers "had training converged at the cap?" by doing more of it.

    Used in chapter 1 (book/01_data_and_models.md).
    """
    import copy

    key = (getattr(model, "training_info", None) or {}).get("key")
    if key is None or key["settings"]["optimizer"] != "lbfgs" and SPECS[model.name].kind != "ae":
        raise ValueError(f"model must be an L-BFGS-trained model from train(), got {getattr(model, 'name', model)!r}")
    check_int("iterations", iterations)
    device = model_device(model)
    further = copy.deepcopy(model)
    x, y = load_subset(key["subset"])
    history = _lbfgs_stage(further, x.to(device), y.to(device), iterations, key["lipschitz"], key["decay_multiplier"])
    return further.eval(), history


def cache_key(name: str, subset: str, seed: int, settings: TrainSettings, **extra: Any) -> dict:
    """Everything that changes the trained weights."""
    return {
        "name": name,
        "subset": subset,
        "seed": seed,
        "settings": asdict(settings),
        "code": TRAIN_CODE_VERSION,
        **extra,
    }


def model_record(model: nn.Module, info: dict, **extra: Any) -> dict:
    """What a model's cache file holds: its weights (on the CPU), ``info`` and ``extra``."""
    return {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "info": info, **extra}


def load_model_record(model: nn.Module, path: Path, key: dict, extra_schema: dict | None = None) -> dict | None:
    """Load the cached weights at ``path`` into ``model`` and return the record, or None.

    The record must hold exactly the model's parameter names with their shapes and dtypes,
    and ``info["key"]`` must equal ``key`` (the file is the one this key names); ``extra_schema``
    checks further entries (see ``coursekit.cache.check_record``). A file that does not fit is
    removed (the caller retrains).
    """
    expected = {k: (v.dtype, tuple(v.shape)) for k, v in model.state_dict().items()}
    schema = {"state_dict": expected, "info": {"key": dict}, **(extra_schema or {})}
    record = load_cached(path, schema)
    if record is None:
        return None
    if set(record["state_dict"]) != set(expected) or record["info"]["key"] != key:
        import warnings

        warnings.warn(f"cache file {path} belongs to another model or key; rebuilding it", stacklevel=2)
        Path(path).unlink(missing_ok=True)
        return None
    model.load_state_dict(record["state_dict"])
    model.training_info = record["info"]
    return record


def fresh_start(
    name: str, subset: str, seed: int, device: torch.device | str | None, *, dropout: float = 0.0
) -> tuple[ZooModel, torch.Tensor, torch.Tensor, torch.Generator]:
    """The common start of every training (``train``, adversarial pools, PGD training): the
    model ``name`` (with ``dropout``) freshly initialised under ``torch.manual_seed(seed)`` on
    ``device``, the training ``subset`` (x [N, 1, 28, 28] in [0, 1], y [N]) on that device, and
    a CPU generator seeded ``seed + 1`` for a variant's own sampling."""
    torch.manual_seed(seed)
    model = build(name, dropout=dropout).to(device)
    x, y = load_subset(subset)
    return model, x.to(device), y.to(device), torch.Generator().manual_seed(seed + 1)


@dataclass
class TrainingRun:
    """What a training variant's ``run`` returns to ``cached_training``: ``info`` entries added to
    ``model.training_info``, ``saved`` entries added to the cache record, and ``result``, any
    further output (the adversarial pools) handed back to the caller."""

    info: dict = field(default_factory=dict)
    saved: dict = field(default_factory=dict)
    result: Any = None


@dataclass
class CachedModel:
    """``cached_training``'s answer: the model in eval mode on its device, and either the
    record loaded from the cache (``stored``) or what the training returned (``run``)."""

    model: ZooModel
    stored: dict | None = None
    run: TrainingRun | None = None


def cached_training(
    name: str,
    subset: str,
    seed: int,
    key: dict,
    run: Callable[[ZooModel, torch.Tensor, torch.Tensor, torch.Generator], TrainingRun],
    *,
    tag: str = "",
    device: torch.device | str | None = None,
    use_cache: bool = True,
    dropout: float = 0.0,
    extra_schema: dict | None = None,
    work: tuple[str, dict] | None = None,
) -> CachedModel:
    """Train once, cache, load afterwards: the skeleton shared by ``train``, ``madry_training``
    and ``adversarial_pool_training``.

    The file is ``<cache>/models/<name>-<tag><subset>-<digest of key>.pt``. With ``use_cache``
    a record that fits (``load_model_record``: the model's weights, ``info["key"] == key`` and
    ``extra_schema``) is loaded and returned as ``stored``. Otherwise the model starts fresh
    (``fresh_start``), ``run(model, x, y, generator)`` trains it in place (timed), and
    ``model.training_info`` = {key, seconds, device, **run's info} is saved with the weights
    and run's ``saved`` entries (when ``use_cache``). ``work`` = (kind, fields) also appends the
    run to the work log (``progress.record_work``).
    """
    device = torch.device(device) if device is not None else default_device()
    record_digest(key)  # a key the cache file cannot hold (a numpy number, say) is refused before, not after, training
    path = cache_dir() / "models" / f"{name}-{tag}{subset}-{key_digest(key)}.pt"
    model = build(name, dropout=dropout)
    stored = load_model_record(model, path, key, extra_schema) if use_cache else None  # validated, or None
    if stored is not None:
        return CachedModel(model.to(device).eval(), stored=stored)
    model, x, y, generator = fresh_start(name, subset, seed, device, dropout=dropout)
    start = time.perf_counter()
    outcome = run(model, x, y, generator)
    seconds = time.perf_counter() - start
    info = {"key": key, "seconds": seconds, "device": str(device), **outcome.info}
    if work is not None:
        kind, fields = work
        record_work(kind, seconds, model=name, samples=len(x), **fields, device=str(device))
    if use_cache:
        save_record(model_record(model, info, **outcome.saved), path)
    model.training_info = info
    return CachedModel(model.eval(), run=outcome)


def train(
    name: str,
    subset: str = "train",
    seed: int = 0,
    profile: str | None = None,
    *,
    optimizer: str | None = None,
    dropout: float = 0.0,
    lipschitz: float = 0.0,
    decay_multiplier: float = 1.0,
    device: torch.device | str | None = None,
    use_cache: bool = True,
    settings: TrainSettings | None = None,
) -> ZooModel:
    """The zoo model ``name`` trained on ``subset`` ("train", "P1", "P2"), in eval mode on ``device``.

    ``seed`` fixes the initialisation and the minibatch order (and the P1/P2 split is drawn
    with seed 0, so that models of different seeds see the same halves). ``dropout`` and
    ``lipschitz`` (the weight of ``lipschitz_penalty``) are the regularisers compared in the
    last chapter; ``decay_multiplier`` scales the paper's weight decay (an exercise);
    ``settings`` replaces the profile's optimisation settings altogether.
    The first call trains and caches; later calls load the cache. ``model.training_info``
    holds the settings, the training time, the device it was trained on and the loss history
    (``loss_history``; not part of the cache key, so files written before it was recorded stay
    valid and simply have none).

    Used in chapters 1 (book/01_data_and_models.md), 2 (book/02_unit_semantics.md),
    3a (book/03a_lbfgs_attack.md), 3b (book/03b_minimum_distortion.md), 4 (book/04_transfer.md),
    5 (book/05_spectral.md), 6 (book/06_adversarial_training.md),
    7a (book/07a_attacks_and_linearity.md) and 7b (book/07b_certificates_and_defences.md).
    """
    check_choice("subset", subset, [s for s in SUBSETS if s != "test"])
    check_int("seed", seed, minimum=None)
    check_positive("decay_multiplier", decay_multiplier, allow_zero=True)
    check_positive("lipschitz", lipschitz, allow_zero=True)
    if settings is None:
        settings = settings_for(name, profile, optimizer)
    elif not isinstance(settings, TrainSettings):
        raise ValueError(f"settings must be a TrainSettings, got {type(settings).__name__}")
    key = cache_key(
        name, subset, seed, settings, dropout=dropout, lipschitz=lipschitz, decay_multiplier=decay_multiplier
    )

    def run(model: ZooModel, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> TrainingRun:
        history = fit(model, x, y, settings, seed=seed, lipschitz=lipschitz, decay_multiplier=decay_multiplier)
        return TrainingRun(info={"history": history})

    fields = {
        "optimizer": settings.optimizer,
        "epochs": settings.epochs,
        "ae_epochs": settings.ae_epochs,
        "lbfgs_iterations": settings.lbfgs_iterations,
        "lipschitz": lipschitz,
    }
    cached = cached_training(
        name, subset, seed, key, run, device=device, use_cache=use_cache, dropout=dropout, work=("train", fields)
    )
    return cached.model
