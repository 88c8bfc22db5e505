"""Benchmark: the minimum-distortion attack (all 9 targets per image) sharded by image over
processes with torchrun (``sharding.py`` in this folder), one process per GPU.

    torchrun --nproc_per_node=2 benchmarks/sharded_attack.py --images 40 --compare
    torchrun --nproc_per_node=8 benchmarks/sharded_attack.py --images 60000 --split train
    python benchmarks/sharded_attack.py --images 40        # one process, no torchrun

Rank 0 prints the wall-clock time of the sharded attack (from a barrier to the gathered
result), images/s and (image, target) pairs/s, model evaluations (forward + backward) per
pair, the success rate and the mean distortion. ``--compare`` then runs the same attack on
all the images in rank 0 alone and prints its time, the speed-up and how far the two results
agree (they may differ in the last bits: rounding depends on the batch's shape). On a CPU
each process uses ``COURSEKIT_THREADS`` threads (torchrun sets OMP_NUM_THREADS=1).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.distributed as dist

from coursekit.attack import AttackResult, min_distortion_attack
from coursekit.config import apply_cpu_threads
from coursekit.data import load_mnist
from coursekit.train import train
from sharding import init_from_env, sharded_min_distortion_attack, shutdown


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def load_model(name: str, rank: int, device: torch.device) -> torch.nn.Module:
    """Rank 0 trains (or loads) first, the others then load its cache: training is not sharded."""
    if rank == 0:
        model = train(name, device=device)
    barrier()
    if rank != 0:
        model = train(name, device=device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def timed_attack(attack, device: torch.device, together: bool = True) -> tuple[float, AttackResult]:
    """Seconds and result of ``attack()``; with ``together``, all ranks start at a barrier."""
    if together:
        barrier()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = attack()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def summary(label: str, seconds: float, result: AttackResult, classes: int) -> str:
    n = len(result)
    ok = result.success
    mean = result.distortion[ok].mean().item() if ok.any() else float("nan")
    pairs = n * (classes - 1)
    return (
        f"{label:<28} {seconds:8.2f} s {n / seconds:9.2f} images/s {pairs / seconds:9.1f} pairs/s "
        f"{result.evaluations.sum().item() / pairs:7.1f} evals/pair  success {ok.float().mean().item():6.1%}"
        f"  mean distortion {mean:.5f}"
    )


def agreement(a: AttackResult, b: AttackResult) -> str:
    both = a.success & b.success
    rel = (a.distortion[both] - b.distortion[both]).abs() / b.distortion[both].clamp_min(1e-12)
    same_x = (a.x_adv == b.x_adv).flatten(1).all(1).float().mean().item()
    return (
        f"agreement: success equal on {(a.success == b.success).float().mean().item():.1%} of images, "
        f"identical x_adv on {same_x:.1%}, max relative distortion difference "
        f"{rel.max().item() if len(rel) else 0.0:.2e}, mean distortion ratio "
        f"{a.distortion[both].mean().item() / b.distortion[both].mean().item():.6f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="FC100-100-10")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--split", default="test", choices=("test", "train"))
    parser.add_argument("--compare", action="store_true", help="also time one process on all the images")
    args = parser.parse_args()
    if args.images < 1:
        parser.error(f"--images must be >= 1, got {args.images}")

    group = init_from_env()
    threads = apply_cpu_threads(group.device)
    model = load_model(args.model, group.rank, group.device)
    x, y = load_mnist(args.split)
    x, y = x[: args.images], y[: args.images]
    options = {"num_classes": 10, "progress_bar": False}
    if group.rank == 0:
        backend = dist.get_backend() if dist.is_initialized() else "none"
        print(
            f"model {args.model} | {args.images} {args.split} images x 9 targets | {group.world_size} "
            f"process(es), backend {backend} | device {group.device} | threads {threads} per process "
            f"| torch {torch.__version__}"
        )
    sharded_min_distortion_attack(
        model,
        x[: group.world_size],
        y[: group.world_size],
        num_classes=10,
        progress_bar=False,
        search_steps=1,
        max_iter=5,
    )  # warm-up
    seconds, result = timed_attack(
        lambda: sharded_min_distortion_attack(model, x, y, **options), group.device, together=False
    )
    if group.rank == 0:
        print(summary(f"sharded over {group.world_size}", seconds, result, 10))
    if args.compare and group.world_size > 1 and group.rank == 0:
        # No collective from here on: the other ranks leave rather than wait (a barrier here
        # could outlast the process group's timeout, 10 minutes for NCCL).
        alone, single = timed_attack(
            lambda: min_distortion_attack(model, x, y, **options), group.device, together=False
        )
        print(summary("one process", alone, single, 10))
        print(f"speed-up {alone / seconds:.2f}x on {group.world_size} processes")
        print(agreement(result, single))
    shutdown()


if __name__ == "__main__":
    main()
