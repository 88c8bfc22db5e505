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


class PassCounter:
    """Counts the rows that go through ``model`` (the adv-lib way: hooks on the model, whatever
    the attack reports): ``forward_backward``, rows of a forward pass followed by a backward one
    (counted per backward pass through the output, so the polish's Jacobian, one forward and 6
    backward passes, counts 6), and ``forward_only``, rows of a forward pass with no graph for a
    backward one. ``with PassCounter(model) as counter: ...`` then ``counter.per_example(n)``."""

    def __init__(self, model):
        self.model = model
        self.forward_backward = 0
        self.forward_only = 0
        self._hook = None

    def _count(self, module, args, output):
        if output.requires_grad:
            output.register_hook(self._backward)
        else:
            self.forward_only += len(output)

    def _backward(self, grad):
        self.forward_backward += len(grad)

    def __enter__(self):
        self._hook = self.model.register_forward_hook(self._count)
        return self

    def __exit__(self, *exc):
        self._hook.remove()

    def per_example(self, n: int) -> tuple[float, float]:
        """(forward+backward, forward-only) passes per example."""
        return self.forward_backward / n, self.forward_only / n
