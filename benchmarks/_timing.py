"""Timing helper shared by the benchmarks: wall-clock seconds with CUDA synchronised."""

import time

import torch


def timed(fn, device):
    """Run ``fn()`` and return (seconds, result), synchronising CUDA before and after."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out
