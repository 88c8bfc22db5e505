"""Benchmark: every attack's optimality on every model of the course, and the exact optimum
where a solver has it (issue 25).

Default run (``python benchmarks/optimality.py``): for each zoo model (FC10 ×3, FC100-100-10,
FC200-200-10, FC123-456-10, AE400-10, CNN) and three small ReLU networks trained here
(784-16-10, 784-32-10, 784-16-16-10; ``coursekit.verification.train_relu_mlp``, 2 epochs,
seed 0), on the first ``--images`` test images with targets (y + 1) mod 10, every ℓ2 attack
(L-BFGS with polish=0 = the paper's method, L-BFGS with the course's polish, C&W-L2, DDN,
foolbox's FMN-L2) and every ℓ∞ attack (a bisection over PGD's ε, foolbox's FMN-Linf) at about
100 and about 1,000 forward+backward passes per example (``coursekit.optimality``). Per model
and norm the reference is each image's best distance over all attacks and both budgets; the
table gives AttackBench's optimality against it, the mean ratio to it, and, where the exact
optimum is known, the mean and worst ratio to it: the FC10 models' ℓ2 on every image (the QP
of ``coursekit.exact``), and on the first ``--exact-images`` images the small ReLU networks'
ℓ2 and ℓ∞ and the FC10 models' ℓ∞ (``coursekit.verification``: SCIP, one thread, started
from the closest attack point; only images whose gap closed count). The exact problems ask
for the attacks' success margin (1e-3 in logits), so a ratio a hair below 1 is an attack point
with less margin. Distances are |r|₂ and |r|∞ (the paper's distortion is |r|₂ / 28).

``--timing``: CPU seconds per image of the exact solves at widths 16, 32 and 64 (784-w-10)
and for 784-16-16-10 (LP-tightened bounds or not), with the ℓ2 formulations compared at width
16 (SCIP's own quadratic, as in the issue's probe, against the projected cuts, with and
without the in-out cuts) and SCIP against HiGHS on the ℓ∞ MILP. Usage::

    python benchmarks/optimality.py                      # ~15 min on a 2-core CPU
    python benchmarks/optimality.py --images 100 --exact-images 20
    python benchmarks/optimality.py --timing --timing-images 5 --time-limit 60
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from coursekit.attack import SUCCESS_MARGIN
from coursekit.config import apply_cpu_threads
from coursekit.data import load_mnist
from coursekit.exact import linear_min_perturbation, linear_weights
from coursekit.models import MODEL_NAMES
from coursekit.optimality import (
    BUDGETS,
    L2_ATTACKS,
    LINF_ATTACKS,
    closest_start,
    distances,
    optimality,
    run_attack,
)
from coursekit.train import train
from coursekit.verification import (
    START_ATTACKS,
    cuts,  # its EXTRA_CUTS are what the cut handler reads
    exact_relu_distortion,
    solver_available,
    train_relu_mlp,
)

SMALL = {"784-16-10": (16,), "784-32-10": (32,), "784-16-16-10": (16, 16)}


def load(name: str) -> torch.nn.Module:
    model = train_relu_mlp(SMALL[name]) if name in SMALL else train(name, device="cpu")
    return model.cpu().eval()


def attack_all(model, x, target) -> dict:
    """{(norm, attack, budget): (distances [N], points [N, ...], passes per example, seconds)}."""
    runs = {}
    for budget in BUDGETS:
        for name in L2_ATTACKS + LINF_ATTACKS:
            norm = "inf" if name in LINF_ATTACKS else "2"
            start = time.perf_counter()
            result = run_attack(name, model, x, target, budget)
            seconds = time.perf_counter() - start
            runs[norm, name, budget] = (
                distances(result, x, norm),
                result.x_adv.detach().cpu(),
                result.evaluations.float().mean().item(),
                seconds,
            )
    return runs


class _Points:
    """The one field of an AttackResult that ``closest_start`` reads."""

    def __init__(self, x_adv):
        self.x_adv = x_adv


def exact_optimum(name: str, model, x, target, runs: dict, args) -> dict:
    """{norm: (exact distances [N], NaN where unknown or not proven; solver note or "")}."""
    out = {}
    if name.startswith("FC10("):
        weight, bias = linear_weights(model)
        qp = linear_min_perturbation(weight, bias, x, target, margin=SUCCESS_MARGIN)
        out["2"] = (qp.distortion * math.sqrt(x[0].numel()), f"QP, {len(x)} images")
    k = min(args.exact_images, len(x))
    if not solver_available() or k == 0 or not (name in SMALL or name.startswith("FC10(")):
        return out
    for norm in ("2", "inf") if name in SMALL else ("inf",):
        start = closest_start(
            model, x[:k], target[:k], [_Points(run[1][:k]) for run in runs.values()], norm, margin=SUCCESS_MARGIN
        )
        result = exact_relu_distortion(model, x[:k], target[:k], norm=norm, start=start, time_limit=args.time_limit)
        d = torch.full((len(x),), float("nan"), dtype=torch.float64)
        d[:k] = torch.where(result.optimal, result.distance, torch.full_like(result.distance, float("nan")))
        out[norm] = (d, f"SCIP, {int(result.optimal.sum())}/{k} proven, {result.seconds.mean():.1f} s/image")
    return out


def rows_for(name: str, runs: dict, exact: dict) -> list[str]:
    """Markdown rows: one per (norm, attack, budget)."""
    lines = []
    for norm in ("2", "inf"):
        keys = [key for key in runs if key[0] == norm]
        best = torch.stack([runs[key][0] for key in keys]).amin(0)
        known, note = exact.get(norm, (None, ""))
        for key in keys:
            d, _, passes, seconds = runs[key]
            ok = torch.isfinite(d) & (best > 0)
            to_best = (d[ok] / best[ok]).mean().item() if ok.any() else float("nan")
            cell = ""
            if known is not None:
                good = ok & torch.isfinite(known) & (known > 0)
                if good.any():
                    ratio = d[good] / known[good]
                    cell = f"{ratio.mean():.4f} / {ratio.max():.4f} ({int(good.sum())})"
            lines.append(
                f"| {name} | ℓ{'∞' if norm == 'inf' else '2'} | {key[1]} | {key[2]} | {passes:.0f} | "
                f"{torch.isfinite(d).double().mean():.0%} | {optimality(d, best):.4f} | {to_best:.4f} | "
                f"{cell} | {seconds:.1f} |"
            )
        if note:
            lines.append(f"| {name} | ℓ{'∞' if norm == 'inf' else '2'} | exact ({note}) | | | | | | | |")
    return lines


def zoo(args) -> None:
    x, y = load_mnist("test")
    x, y = x[: args.images], y[: args.images]
    target = (y + 1) % 10
    print(
        f"{args.images} test images, targets (y+1) mod 10 | torch {torch.__version__} | "
        f"threads {torch.get_num_threads()} | exact on the first {args.exact_images}"
    )
    print(
        "| model | norm | attack | budget | passes/ex | success | optimality | ratio to best | "
        "ratio to exact: mean / worst (images) | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        model = load(name)
        runs = attack_all(model, x, target)
        exact = exact_optimum(name, model, x, target, runs, args)
        print("\n".join(rows_for(name, runs, exact)), flush=True)


def _solve_each(model, x, target, start, **options) -> list:
    """Per image: (CPU seconds, status, unstable units, nodes), each image solved alone."""
    rows = []
    for i in range(len(x)):
        began = time.process_time()
        result = exact_relu_distortion(model, x[i : i + 1], target[i : i + 1], start=start[i : i + 1], **options)
        rows.append((time.process_time() - began, result.status[0], int(result.unstable[0]), int(result.nodes[0])))
    return rows


def timing(args) -> None:
    x, y = load_mnist("test")
    x, y = x[: args.timing_images], y[: args.timing_images]
    target = (y + 1) % 10
    print(
        f"{len(x)} test images, targets (y+1) mod 10, time limit {args.time_limit:.0f} s per image, "
        f"one SCIP thread | torch threads {torch.get_num_threads()}"
    )
    print(
        "| network | norm | solver / formulation | proven | CPU s/image: mean | median | max | unstable units | nodes |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    cases = []
    if "formulations" in args.parts:
        cases += [
            ((16,), "2", "SCIP, native quadratic (the probe's)", {"formulation": "native"}),
            ((16,), "2", "SCIP, projected cuts without in-out cuts", {"extra_cuts": ()}),
        ]
    if "widths" in args.parts:
        cases += [((w,), "2", "SCIP, projected cuts", {}) for w in args.widths]
    if "linf" in args.parts:
        cases += [((16,), "inf", "HiGHS", {"solver": "highs"})]
        cases += [((w,), "inf", "SCIP", {}) for w in args.widths]
    if "deep" in args.parts:
        cases += [
            ((16, 16), norm, f"SCIP, LP-tightened bounds: {tight}", {"tighten": tight})
            for norm in ("2", "inf")
            for tight in (False, True)
        ]
    starts = {}
    for hidden, norm, label, options in cases:
        model = train_relu_mlp(hidden)
        if (hidden, norm) not in starts:  # the course's attack (ℓ2) or the PGD bisection (ℓ∞)
            starts[hidden, norm] = run_attack(START_ATTACKS[norm], model, x, target, 100).x_adv.detach()
        saved = cuts.EXTRA_CUTS
        cuts.EXTRA_CUTS = options.pop("extra_cuts", saved)
        per = _solve_each(model, x, target, starts[hidden, norm], norm=norm, time_limit=args.time_limit, **options)
        cuts.EXTRA_CUTS = saved
        seconds = [p[0] for p in per]
        print(
            f"| 784-{'-'.join(map(str, hidden))}-10 | ℓ{'∞' if norm == 'inf' else '2'} | {label} | "
            f"{sum(p[1] == 'optimal' for p in per)}/{len(per)} | {statistics.mean(seconds):.1f} | "
            f"{statistics.median(seconds):.1f} | {max(seconds):.1f} | "
            f"{statistics.mean(p[2] for p in per):.1f} | {statistics.mean(p[3] for p in per):.0f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--exact-images", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=30.0, help="seconds per exact solve")
    parser.add_argument("--models", nargs="+", default=[*MODEL_NAMES, *SMALL], choices=[*MODEL_NAMES, *SMALL])
    parser.add_argument("--timing", action="store_true", help="time the exact solves instead")
    parser.add_argument("--timing-images", type=int, default=5)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["formulations", "widths", "linf", "deep"],
        choices=["formulations", "widths", "linf", "deep"],
        help="--timing: which comparisons",
    )
    args = parser.parse_args()
    apply_cpu_threads("cpu")
    timing(args) if args.timing else zoo(args)


if __name__ == "__main__":
    main()
