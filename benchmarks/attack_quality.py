"""Benchmark: the attack's distortion against the exact optimum on the FC10 models.

For a softmax on pixels the closest adversarial example is a convex QP (``coursekit.exact``,
certified by its duality gap, independent of the attack). In one run, per FC10 model and on the
same test images and targets ((y + 1) mod 10), it times ``lbfgs_attack`` with its defaults and
with ``polish=0`` (the paper's penalty method alone) and prints, per image, the ratio of the
attack's distortion to the exact one (mean and worst), the success rate and the passes of the
model per example counted by hooks on it, forward+backward and forward-only. The exact problem is
solved with the search's margin (``success_margin``: 1e-3 in logits on these models), so a ratio of
1 is the best any attack can report. Usage::

    python benchmarks/attack_quality.py --images 500
"""

from __future__ import annotations

import argparse
import time

import torch

from _timing import PassCounter
from coursekit.attack import SUCCESS_MARGIN, lbfgs_attack
from coursekit.config import apply_cpu_threads
from coursekit.data import load_mnist
from coursekit.exact import linear_min_perturbation, linear_weights
from coursekit.models import TABLE1_MODELS
from coursekit.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args()
    apply_cpu_threads("cpu")
    x, y = load_mnist("test")
    x, y = x[: args.images], y[: args.images]
    target = (y + 1) % 10
    print(
        f"{args.images} test images | targets (y+1) mod 10 | torch {torch.__version__} | "
        f"threads {torch.get_num_threads()}"
    )
    print(
        f"{'model':<12} {'attack':<22} {'s':>7} {'fwd+bwd/ex':>11} {'fwd-only/ex':>12} {'success':>8} "
        f"{'mean ratio':>11} {'worst ratio':>12}"
    )
    for name in [m for m in TABLE1_MODELS if m.startswith("FC10(")]:
        model = train(name, device="cpu")
        weight, bias = linear_weights(model)
        margin = _margin(model, x)
        exact = linear_min_perturbation(weight, bias, x, target, margin=margin).distortion
        for label, options in (("default", {}), ("polish=0 (penalty)", {"polish": 0})):
            with PassCounter(model) as counter:
                start = time.perf_counter()
                result = lbfgs_attack(model, x, target, **options)
                seconds = time.perf_counter() - start
            both, forward = counter.per_example(len(x))
            ok = result.success & torch.isfinite(exact) & (exact > 0)
            ratio = result.distortion[ok].double() / exact[ok]
            print(
                f"{name:<12} {label:<22} {seconds:>7.2f} {both:>11.1f} {forward:>12.1f} "
                f"{result.success.float().mean():>8.1%} {ratio.mean():>11.5f} {ratio.max():>12.5f}"
            )


def _margin(model, x):
    """The search's margin per image (``attack.success_margin`` where the package has it)."""
    try:
        from coursekit.attack import success_margin
    except ImportError:  # older code: an absolute margin
        return SUCCESS_MARGIN
    with torch.no_grad():
        return success_margin(model(x))


if __name__ == "__main__":
    main()
