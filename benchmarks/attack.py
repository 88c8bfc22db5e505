"""Benchmark: coursekit's batched L-BFGS attack against the classic implementations.

In one run, on the same model, images and targets ((y + 1) mod 10), it times

1. ``classic``: the algorithm as advertorch 0.2.3's ``LBFGSAttack`` implements it (reimplemented
   here from its description, since advertorch no longer imports on torch 2.x): the whole batch
   flattened into one scipy ``fmin_l_bfgs_b`` problem (the sum of the images' objectives
   const_i·CE_i + |r_i|², weight on the loss), float64 numpy on the host at every evaluation,
   9 binary-search steps on each image's const (initial 1e-2, ×10 until bracketed, then
   arithmetic bisection) × 100 iterations;
2. ``foolbox C&W-L2`` (foolbox 3.3.4, 9 × 1000 steps) as the quality reference, when installed;
3. ``coursekit lbfgs_attack`` (defaults), and with ``polish=0`` (the paper's penalty method
   alone, no linearised polish);

and prints examples/s, the passes of the model per example counted by hooks on the model (the
adv-lib way: a figure that compares across hardware), split into forward+backward passes and
forward-only ones (checks, bisections, trial points), success rate, mean distortion and the ratios
to the classic algorithm and to C&W. ``--competitor`` runs a CPU-bound process (a busy loop) beside the
measurement, as on a shared machine. Usage::

    python benchmarks/attack.py --model FC100-100-10 --images 500
    python benchmarks/attack.py --images 300 --competitor --threads 1
    python benchmarks/attack.py --images 10000 --skip-classic --skip-cw   # on a GPU
    python benchmarks/attack.py --images 50000 --split train --skip-classic --skip-cw
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from _timing import PassCounter, timed
from coursekit.attack import distortion, lbfgs_attack
from coursekit.config import apply_cpu_threads, default_device
from coursekit.data import load_mnist
from coursekit.train import train


def classic_lbfgs_attack(model, x, target, binary_search_steps=9, max_iterations=100, initial_const=1e-2):
    """advertorch-style L-BFGS: one flattened scipy problem for the batch, weight on the loss."""
    from scipy.optimize import fmin_l_bfgs_b

    n = len(x)
    const = np.full(n, initial_const)
    lower, upper = np.zeros(n), np.full(n, 1e10)
    best = x.clone()
    best_d2 = np.full(n, np.inf)
    x0 = x.detach().cpu().double().numpy().reshape(-1)

    calls = [0]

    def objective(v, const_t):
        calls[0] += 1
        adv = torch.from_numpy(v.reshape(x.shape)).float().to(x.device).requires_grad_()
        logits = model(adv)
        loss = (const_t * F.cross_entropy(logits, target, reduction="none")).sum() + (adv - x).pow(2).sum()
        loss.backward()
        return float(loss.detach()), adv.grad.detach().cpu().numpy().reshape(-1).astype(np.float64)

    for _ in range(binary_search_steps):
        const_t = torch.as_tensor(const, dtype=torch.float32, device=x.device)
        v, _, _ = fmin_l_bfgs_b(
            objective, x0.copy(), args=(const_t,), bounds=[(0.0, 1.0)] * x0.size, maxiter=max_iterations
        )
        adv = torch.from_numpy(v.reshape(x.shape)).float().to(x.device)
        with torch.no_grad():
            hit = (model(adv).argmax(1) == target).cpu().numpy()
        d2 = (adv - x).flatten(1).pow(2).sum(1).cpu().numpy()
        better = hit & (d2 < best_d2)
        best[torch.as_tensor(better, device=x.device)] = adv[torch.as_tensor(better, device=x.device)]
        best_d2[better] = d2[better]
        upper = np.where(hit, np.minimum(upper, const), upper)
        lower = np.where(hit, lower, np.maximum(lower, const))
        bracketed = upper < 1e9
        const = np.where(bracketed, (lower + upper) / 2, np.where(hit, const, const * 10))
    return best, calls[0]  # every call is one forward+backward pass of each image


def foolbox_cw(model, x, target, steps=1000, binary_search_steps=9):
    import foolbox as fb

    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    attack = fb.attacks.L2CarliniWagnerAttack(binary_search_steps=binary_search_steps, steps=steps)
    _, adv, _ = attack(fmodel, x, fb.criteria.TargetedMisclassification(target), epsilons=None)
    return adv, binary_search_steps * steps


def summarize(name, seconds, model, x, target, adv, passes):
    """``passes``: (forward+backward, forward-only) per example."""
    with torch.no_grad():
        hit = model(adv).argmax(1) == target
    dist = distortion(x, adv)
    return {
        "method": name,
        "seconds": seconds,
        "examples_per_s": len(x) / seconds,
        "passes": passes,
        "success": hit.float().mean().item(),
        "distortion": dist[hit].mean().item() if hit.any() else float("nan"),
        "distortion_all": dist,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="FC100-100-10")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--split", default="test", choices=("test", "train"), help="where the images come from")
    parser.add_argument("--skip-classic", action="store_true")
    parser.add_argument("--skip-cw", action="store_true")
    parser.add_argument("--skip-plain", action="store_true", help="skip the polish=0 row")
    parser.add_argument("--cw-steps", type=int, default=1000)
    parser.add_argument("--competitor", action="store_true", help="run a busy-loop process beside it")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: coursekit's choice)")
    args = parser.parse_args()
    competitor = start_competitor() if args.competitor else None
    try:
        time.sleep(0.5 if competitor else 0)  # let it get going: "auto" looks at the load now
        if args.threads:
            torch.set_num_threads(args.threads)
        else:
            apply_cpu_threads("cpu")
        device = default_device()
        model = train(args.model)
        for p in model.parameters():
            p.requires_grad_(False)
        x, y = load_mnist(args.split)
        x, y = x[: args.images].to(device), y[: args.images].to(device)
        target = (y + 1) % 10
        print(
            f"model {args.model} | {args.images} {args.split} images | targets (y+1) mod 10 | device {device}"
            f" | torch {torch.__version__} | threads {torch.get_num_threads()}"
            f" | competitor {'on' if args.competitor else 'off'}"
        )
        rows = measure(args, model, x, target, device)
    finally:
        if competitor is not None:
            competitor.kill()
    report(rows)


def start_competitor():
    """A CPU-bound process beside the measurement (what another user of the machine does)."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def counted(model, x, fn, device):
    """(seconds, result, (forward+backward, forward-only) passes per example) of ``fn()``; for
    coursekit's result, checks that its own counts are the hooks' (``evaluations`` and
    ``forward_only``, where the package has them)."""
    with PassCounter(model) as counter:
        seconds, result = timed(fn, device)
    passes = counter.per_example(len(x))
    reported = getattr(result, "forward_only", None)
    if reported is not None and (int(result.evaluations.sum()), int(reported.sum())) != (
        counter.forward_backward,
        counter.forward_only,
    ):
        raise SystemExit(
            f"the attack reports {int(result.evaluations.sum())} + {int(reported.sum())} passes, "
            f"the hooks counted {counter.forward_backward} + {counter.forward_only}"
        )
    return seconds, result, passes


def measure(args, model, x, target, device) -> list[dict]:
    rows = []
    lbfgs_attack(model, x[:8], target[:8], search_steps=1, max_iter=5)  # warm-up
    seconds, result, passes = counted(model, x, lambda: lbfgs_attack(model, x, target), device)
    rows.append(summarize("coursekit lbfgs_attack", seconds, model, x, target, result.x_adv, passes))
    if not args.skip_plain:
        seconds, result, passes = counted(model, x, lambda: lbfgs_attack(model, x, target, polish=0), device)
        rows.append(summarize("coursekit, polish=0 (penalty only)", seconds, model, x, target, result.x_adv, passes))
    if not args.skip_classic:
        seconds, (adv, _), passes = counted(model, x, lambda: classic_lbfgs_attack(model, x, target), device)
        rows.append(summarize("classic (advertorch algorithm, scipy)", seconds, model, x, target, adv, passes))
    if not args.skip_cw:
        try:
            import foolbox  # noqa: F401
        except ImportError:
            print("foolbox not installed: skipping the C&W reference (pip install foolbox==3.3.4)")
        else:
            seconds, (adv, _), passes = counted(
                model, x, lambda: foolbox_cw(model, x, target, steps=args.cw_steps), device
            )
            rows.append(summarize(f"foolbox 3 C&W-L2 (9 x {args.cw_steps})", seconds, model, x, target, adv, passes))
    return rows


def report(rows: list[dict]) -> None:
    ours = rows[0]
    print(
        f"\n{'method':<40} {'ex/s':>10} {'fwd+bwd/ex':>11} {'fwd-only/ex':>12} {'success':>8} {'mean dist':>10}"
        f" {'speed vs ours':>14} {'dist vs ours':>13}"
    )
    for row in rows:
        print(
            f"{row['method']:<40} {row['examples_per_s']:>10.1f} {row['passes'][0]:>11.1f} {row['passes'][1]:>12.1f}"
            f" {row['success']:>8.1%}"
            f" {row['distortion']:>10.5f} {row['examples_per_s'] / ours['examples_per_s']:>13.3f}x"
            f" {row['distortion'] / ours['distortion']:>12.4f}x"
        )
    for row in rows[1:]:
        print(
            f"ours vs {row['method']}: speed ratio {ours['examples_per_s'] / row['examples_per_s']:.1f}x, "
            f"mean-distortion ratio {ours['distortion'] / row['distortion']:.4f}"
        )


if __name__ == "__main__":
    main()
