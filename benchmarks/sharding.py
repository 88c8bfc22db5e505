"""Scale-out: the minimum-distortion attack sharded by image across processes (one per GPU).

Beside the benchmarks that use it (``sharded_attack.py``, ``gpu_session.sh``), not in the
student package: no chapter shards an attack. It imports ``coursekit``; scripts in this folder
import it as ``sharding`` (their folder is on ``sys.path``), the tests add the folder.

**Why by image.** Every image's attack is independent of every other's: its own targets, its
own c bracket, its own L-BFGS history (``coursekit.attack``). Nothing has to be exchanged
while the attacks run, so the only communication is one gather of the results at the end.
This is data parallelism in its plainest form; the model is small and every rank holds a copy.

**Who gets which images.** With W processes, rank r attacks images r, r + W, r + 2W, … of
the batch (a strided split). Shard sizes differ by at most one. Images differ in cost: an
image the model already misclassifies costs nothing, an easy target converges in a few
iterations, a hard one uses all ``search_steps × max_iter``; the strided split gives every
rank a sample spread over the whole batch, so a run of hard (or free) images, e.g. in data
sorted by label, is shared out instead of landing on one rank. Putting the results back in
order is then a transpose (``_interleave``).

**No scheduler.** The split is static and decided by the rank alone; ``torchrun`` starts the
processes, ``torch.distributed`` gathers the results. Over thousands of images the static
split is balanced to within the spread of per-image cost divided by √(images per rank); a
work queue would buy little and be one more thing to get wrong.

**How results come back.** Each rank attacks its shard with ``min_distortion_attack`` (all
(image, target) pairs at once, in chunks), then each field of the ``AttackResult`` is padded
to ⌈N/W⌉ rows and ``all_gather``-ed (tensors, not pickled objects: works on gloo and NCCL,
uneven shards and empty shards included). Every rank returns the whole result [N, ...] in
the original order, on its model's device. Before the gather the ranks exchange the batch
size (all must pass the same N) and whether their attack raised, so that an error on one
rank is raised on all of them instead of leaving the others waiting in the gather.

**Memory per rank.** Each rank's attack chunks its pairs by ``config.attack_chunk_size``
(half the free memory of *its* GPU), so the memory per GPU does not depend on the number of
GPUs; the gathered result adds N × (pixels + 6) numbers per rank (10,000 MNIST images:
about 32 MB).

**What is not sharded.** Training: the models are small and are trained once and cached;
train on one rank first (the others wait at a barrier and then load the cache), as
``benchmarks/sharded_attack.py`` does.

**Same answer as one process, up to rounding.** An image's attack does not depend on the
other images, but floating-point rounding does depend on the batch's shape (a matrix
product's kernel is chosen by shape), and the iterations can amplify a last-bit difference;
``evaluations`` and ``forward_only`` can also differ a little, since the inner solver drops
converged images from its batch (every ``check_every`` iterations) at moments that depend on
the whole batch, and counts every row it computes.
So a sharded run agrees with the single-process run image by image to rounding, not always
bit for bit (FC100-100-10, 40 test images, 2 ranks: 39 of 40 x_adv identical, distortions
within 1e-7 relative; ``benchmarks/sharded_attack.py --compare`` prints this). The tests use a
model computed row by row, whose rounding does not depend on the batch, and demand equality.

**Running on k GPUs** (one process per GPU; rank r uses ``cuda:LOCAL_RANK``, NCCL)::

    torchrun --nproc_per_node=k benchmarks/sharded_attack.py --images 10000

More processes than GPUs share them round-robin and talk over gloo (NCCL refuses two ranks
on one GPU); on a CPU the backend is gloo (the tests run 2 and 3 processes that way). In
your own script::

    from sharding import (init_from_env, local_device,   # benchmarks/ on sys.path
                             sharded_min_distortion_attack, shutdown)
    init_from_env()                      # no-op without torchrun's environment variables
    model = model.to(local_device())
    result = sharded_min_distortion_attack(model, x, y)   # x, y: the whole batch, every rank
    shutdown()

Without ``torchrun`` (``torch.distributed`` not initialised) the function is
``min_distortion_attack`` itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

from coursekit._checks import model_device
from coursekit.attack import AttackResult, min_distortion_attack

if TYPE_CHECKING:
    from typing import Any


__all__ = [
    "init_from_env",
    "local_device",
    "ProcessGroup",
    "shard_indices",
    "sharded_min_distortion_attack",
    "shutdown",
]


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands: ``rank`` in [0, ``world_size``), and its ``device``."""

    rank: int
    world_size: int
    device: torch.device


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ValueError(f"environment variable {name} must be a non-negative int, got {value!r}")
    return int(value)


def local_device() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` when CUDA is available (LOCAL_RANK from
    torchrun, 0 without it; modulo the number of GPUs, so that more processes than GPUs
    share them), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", (_env_int("LOCAL_RANK") or 0) % torch.cuda.device_count())
    return torch.device("cpu")


def init_from_env(backend: str | None = None, timeout: timedelta | None = None) -> ProcessGroup:
    """Initialise ``torch.distributed`` from torchrun's environment (RANK, WORLD_SIZE,
    MASTER_ADDR, MASTER_PORT, LOCAL_RANK), if present and not done yet.

    ``backend``: by default NCCL when every process has a GPU of its own (each rank then uses
    ``cuda:LOCAL_RANK`` as its current device), else gloo (on the CPU, or several processes
    sharing a GPU, which NCCL refuses; the results then travel through the host). Without
    those variables nothing is initialised and the result says rank 0 of 1. ``timeout``: how
    long a collective waits for the slowest rank (torch's default when None: 10 minutes for
    NCCL, 30 for gloo). Returns the rank, the world size and the local device.
    """
    if backend is not None and backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or None, got {backend!r}")
    if timeout is not None and not isinstance(timeout, timedelta):
        raise TypeError(f"timeout must be a datetime.timedelta or None, got {timeout!r}")
    device = local_device()
    if not dist.is_available():
        return ProcessGroup(0, 1, device)
    if not dist.is_initialized():
        rank, world = _env_int("RANK"), _env_int("WORLD_SIZE")
        if rank is None or world is None:
            return ProcessGroup(0, 1, device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        per_node = _env_int("LOCAL_WORLD_SIZE") or world
        own_gpu = device.type == "cuda" and per_node <= torch.cuda.device_count()
        backend = backend or ("nccl" if own_gpu else "gloo")
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world, timeout=timeout)
    return ProcessGroup(dist.get_rank(), dist.get_world_size(), device)


def shutdown() -> None:
    """Tear down the process group if one is initialised (safe to call twice, or without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_indices(n: int, rank: int, world_size: int) -> torch.Tensor:
    """The images of rank ``rank`` among ``n``: rank, rank + W, … < n, int64
    [max(0, ⌈(n − rank)/W⌉)] (empty when rank ≥ n)."""
    if world_size < 1 or not 0 <= rank < world_size or n < 0:
        raise ValueError(f"need n ≥ 0 and 0 ≤ rank < world_size; got n={n}, rank={rank}, world_size={world_size}")
    return torch.arange(rank, max(n, rank), world_size)


def _interleave(gathered: list[torch.Tensor], n: int) -> torch.Tensor:
    """Undo the strided split: ``gathered[r]`` [M, ...] holds images r, r + W, … (padded to
    M = ⌈n/W⌉ rows); returns the n images in order [n, ...]."""
    stacked = torch.stack(gathered, dim=1)  # [M, W, ...]: row j, column r is image j·W + r
    return stacked.flatten(0, 1)[:n]


def _pad(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` [m, ...] padded with zeros to [rows, ...]."""
    padding = t.new_zeros((rows - len(t), *t.shape[1:]))
    return torch.cat([t, padding])


def _comm_device(device: torch.device) -> torch.device:
    """Where the collectives run: the rank's GPU for NCCL, the CPU for gloo."""
    return device if dist.get_backend() == "nccl" else torch.device("cpu")


def _all_gather(t: torch.Tensor, rows: int, device: torch.device) -> list[torch.Tensor]:
    """``t`` [m ≤ rows, ...] from every rank, each padded to [rows, ...] (bool as uint8)."""
    is_bool = t.dtype == torch.bool
    local = _pad(t.to(device, torch.uint8 if is_bool else t.dtype), rows).contiguous()
    out = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(out, local)
    return [o.bool() if is_bool else o for o in out]


def _check_same_everywhere(n: int, device: torch.device) -> None:
    """Raise ValueError on every rank unless every rank passed a batch of ``n`` images."""
    sizes = _all_gather(torch.tensor([n], device=device), 1, device)
    counts = [int(s) for s in sizes]
    if len(set(counts)) > 1:
        raise ValueError(f"x must be the same whole batch on every rank; got sizes {counts} by rank")


def _raise_if_any_failed(error: BaseException | None, device: torch.device) -> None:
    """Share whether each rank's attack raised; re-raise on the failing ranks, RuntimeError on
    the others (so that no rank waits forever in the gather)."""
    flags = _all_gather(torch.tensor([error is not None], device=device), 1, device)
    failed = [r for r, f in enumerate(flags) if bool(f)]
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(f"the sharded attack failed on rank(s) {failed}; see their errors")


def sharded_min_distortion_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **options: Any) -> AttackResult:
    """``min_distortion_attack(model, x, y, **options)`` with the images shared out among the
    processes of ``torch.distributed`` (see the module's docstring).

    Args:
        model: the classifier, on this rank's device (``local_device()``).
        x: the whole batch of images [N, ...], the same on every rank (any device).
        y: their labels [N] (any integer dtype).
        options: passed to ``min_distortion_attack`` (``num_classes``, ``batch_size``,
            ``search_steps``, ``max_iter``, …); the same on every rank.

    Returns:
        AttackResult for all N images in the original order, on every rank, on the model's
        device. Without an initialised process group: ``min_distortion_attack`` itself.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(
            f"x must be a torch.Tensor batch [N, ...], got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
        )
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be a tensor of shape ({len(x)},) like x's {len(x)} images, got {shape}")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return min_distortion_attack(model, x, y, **options)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = model_device(model)
    comm = _comm_device(device)
    _check_same_everywhere(len(x), comm)
    mine = shard_indices(len(x), rank, world).to(x.device)
    local, error = None, None
    try:
        local = min_distortion_attack(model, x[mine], y[mine], **options)
    except Exception as exc:  # told to every rank below, then raised here
        error = exc
    _raise_if_any_failed(error, comm)
    rows = -(-len(x) // world)
    gathered = {
        f.name: _interleave(_all_gather(getattr(local, f.name), rows, comm), len(x)) for f in fields(AttackResult)
    }
    return AttackResult(**gathered).to(device)
