"""One rank of the sharded-attack tests (``tests/test_distributed.py``), run under torchrun:

    python -m torch.distributed.run --nproc_per_node=W tests/distributed_worker.py OUT

Every rank runs the same scenarios on ``tiny_problem`` and saves what it got to OUT/rank<r>.pt.
"""

from __future__ import annotations

import sys
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import torch

from conftest import small_mlp  # also puts src/ and benchmarks/ on sys.path

# check_every=0: no compaction of the batch inside the inner solver, whose skipped iteration
# makes an image's iteration budget depend on the other images in its batch. With it off,
# every image's attack is independent of its batch, so shards must agree exactly.
OPTIONS = {"num_classes": 4, "search_steps": 2, "max_iter": 10, "check_every": 0, "progress_bar": False}
IMAGES = 7


class RowwiseMLP(torch.nn.Module):
    """``small_mlp`` applied to one image at a time (a loop over the rows).

    Floating-point rounding depends on the batch's shape: a matrix product's kernel, even a
    broadcast product's row sums, are chosen by shape (on this CPU an image's logits change in
    the last bit between batches of 1, 9, 13 and 21 images), and the attack's iterations
    amplify such differences (an image may stop an iteration earlier). Computed row by row,
    every image's logits and gradient round the same whatever shares its batch (the attack's
    own batched operations were checked to be batch-invariant), so a sharded run must agree
    with the unsharded one bit for bit: any difference is the sharding's fault.
    """

    def __init__(self, mlp: torch.nn.Sequential):
        super().__init__()
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = [self.mlp(row[None]) for row in x]
        return torch.cat(rows) if rows else self.mlp(x)


def tiny_problem(n: int = IMAGES) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A 16-8-4 sigmoid MLP (``RowwiseMLP``; weights scaled so that the attacks succeed within
    few steps) and n 4×4 images [n, 1, 4, 4], labelled with the model's own prediction except
    image 2 (mislabelled: already misclassified, so it costs nothing)."""
    mlp = small_mlp(inputs=16, hidden=8, classes=4, seed=3)
    with torch.no_grad():
        mlp[1].weight.mul_(5)
        mlp[3].weight.mul_(5)
    model = RowwiseMLP(mlp).eval()
    x = torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = model(x).argmax(1)
    if n > 2:
        y[2] = (y[2] + 1) % 4
    return model, x, y


def as_dict(result) -> dict[str, torch.Tensor]:
    return {f.name: getattr(result, f.name) for f in fields(result)}


def _error_of(call) -> list[str]:
    try:
        call()
    except Exception as exc:  # recorded for the test to check
        return [type(exc).__name__, str(exc)]
    return []


def main(out: Path) -> None:
    import torch.distributed as dist

    from sharding import init_from_env, sharded_min_distortion_attack, shutdown  # benchmarks/sharding.py

    group = init_from_env(timeout=timedelta(seconds=60))  # a hang fails within the test's time
    assert dist.is_initialized() and dist.get_backend() == "gloo"
    rank, world = group.rank, group.world_size
    model, x, y = tiny_problem()
    record = {
        "rank": rank,
        "world_size": world,
        "device": str(group.device),
        "all": as_dict(sharded_min_distortion_attack(model, x, y, **OPTIONS)),
    }
    few = world - 1  # the last rank gets no image
    record["few"] = as_dict(sharded_min_distortion_attack(model, x[:few], y[:few], **OPTIONS))
    bad = x[:world].clone()  # one image per rank
    bad[1] = 2.0  # outside the box, in rank 1's shard only
    record["bad_pixel"] = _error_of(lambda: sharded_min_distortion_attack(model, bad, y[:world], **OPTIONS))
    n = IMAGES - rank  # a different batch on every rank
    record["sizes"] = _error_of(lambda: sharded_min_distortion_attack(model, x[:n], y[:n], **OPTIONS))
    torch.save(record, out / f"rank{rank}.pt")
    shutdown()
    shutdown()  # a second teardown is harmless
    assert not dist.is_initialized()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
