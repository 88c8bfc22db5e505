"""Golden outputs of every attack: run them on small fixed models and images, save what they
return, and compare two such files bit for bit.

Written before a refactor (issue 32) and run on the commit before it and after it: every
tensor an attack returns (x_adv, success, c, distortion, l2; a verification's points, distances,
bounds, margins and statuses; the tables of error_vs_eps and compare_with_exact) must be
``torch.equal``. The passes the attacks report (``evaluations``, ``forward_only``) are saved
apart, beside what hooks on the model counted while the attack ran (``benchmarks/_timing.
PassCounter``): they are expected to change where the old counts were wrong.

Everything runs on the CPU, on one thread, seeded. Usage (the package from src/ first)::

    PYTHONPATH=src python benchmarks/golden_attacks.py save /tmp/golden-before.pt
    PYTHONPATH=src python benchmarks/golden_attacks.py compare /tmp/golden-before.pt /tmp/golden-after.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _timing

from _timing import PassCounter  # noqa: E402

PASS_FIELDS = ("evaluations", "forward_only")


def _relu_net(seed: int, hidden: int = 12, classes: int = 4, scale: float = 3.0) -> torch.nn.Module:
    """A small ReLU network on 4×4 images (the hook test's kind of model)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)
    )
    with torch.no_grad():
        model[1].weight.mul_(scale)
    return model.eval()


def _linear_net(seed: int) -> torch.nn.Module:
    """A softmax on 4×4 images whose logits vary enough over the box (an FC10 in miniature)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 10))
    with torch.no_grad():
        model[1].weight.mul_(8)
    return model.eval()


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def _next_label(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = model(x)
    return (logits.argmax(1) + 1) % logits.shape[1]


def _attack_runs() -> dict:
    """name -> (model, call): every attack on its small problem."""
    from coursekit import optimality
    from coursekit.attack import lbfgs_attack, min_distortion_attack
    from coursekit.modern_attacks import carlini_wagner_l2, ddn, fgsm, pgd
    from coursekit.paper import PAPER_ATTACK

    relu, linear = _relu_net(2), _linear_net(0)
    x = _images(12, 0)
    t_relu, t_linear = _next_label(relu, x), _next_label(linear, x)
    with torch.no_grad():
        y_relu = relu(x).argmax(1)
    runs = {
        "lbfgs default (relu)": (relu, lambda: lbfgs_attack(relu, x, t_relu)),
        "lbfgs paper (relu)": (relu, lambda: lbfgs_attack(relu, x, t_relu, **PAPER_ATTACK)),
        "lbfgs polish=0 refine=False (relu)": (relu, lambda: lbfgs_attack(relu, x, t_relu, polish=0, refine=False)),
        "lbfgs 1000-budget (relu)": (
            relu,
            lambda: lbfgs_attack(relu, x, t_relu, search_steps=10, max_iter=100, history=10, tol=1e-6, ftol=1e-9),
        ),
        "lbfgs scipy (relu)": (relu, lambda: lbfgs_attack(relu, x[:4], t_relu[:4], backend="scipy", search_steps=2)),
        "lbfgs default (linear)": (linear, lambda: lbfgs_attack(linear, x, t_linear)),
        "lbfgs paper (linear)": (linear, lambda: lbfgs_attack(linear, x, t_linear, **PAPER_ATTACK)),
        "min_distortion_attack (relu)": (
            relu,
            lambda: min_distortion_attack(
                relu, x[:5], y_relu[:5], num_classes=4, progress_bar=False, search_steps=2, max_iter=20
            ),
        ),
        "fgsm (relu)": (relu, lambda: fgsm(relu, x, y_relu, 0.1)),
        "pgd inf (relu)": (relu, lambda: pgd(relu, x, y_relu, 0.1, steps=10)),
        "pgd 2 (relu)": (relu, lambda: pgd(relu, x, y_relu, 0.5, norm="2", steps=10)),
        "pgd inf targeted (relu)": (relu, lambda: pgd(relu, x, y_relu, 0.2, steps=10, target=t_relu)),
        "pgd 2 no random start (relu)": (
            relu,
            lambda: pgd(relu, x, y_relu, 0.5, norm="2", steps=7, random_start=False, step_size=0.1),
        ),
        "carlini_wagner_l2 targeted (relu)": (
            relu,
            lambda: carlini_wagner_l2(relu, x, t_relu, search_steps=3, steps=30, lr=0.05, c_init=1.0),
        ),
        "carlini_wagner_l2 untargeted confidence (relu)": (
            relu,
            lambda: carlini_wagner_l2(relu, x, y=y_relu, search_steps=2, steps=20, confidence=0.5, abort_early=False),
        ),
        "ddn targeted (relu)": (relu, lambda: ddn(relu, x, t_relu, steps=30)),
        "ddn untargeted (relu)": (relu, lambda: ddn(relu, x, y=y_relu, steps=30)),
        "pgd_bisection (relu)": (relu, lambda: optimality.pgd_bisection(relu, x, t_relu, steps=10, bisection_steps=8)),
        "pgd_bisection (linear)": (linear, lambda: optimality.pgd_bisection(linear, x, t_linear)),
    }
    for name in optimality.L2_ATTACKS + optimality.LINF_ATTACKS:
        if name.startswith("FMN"):
            try:
                import foolbox  # noqa: F401
            except ImportError:
                continue
        runs[f"run_attack {name} budget 100 (relu)"] = (
            relu,
            lambda name=name: optimality.run_attack(name, relu, x[:6], t_relu[:6], 100),
        )
    return runs


def _attack_fields(result) -> dict:
    """The result's tensors: those the attack decides, and (apart) the passes it reports."""
    names = ("x_adv", "target", "success", "c", "distortion", "l2")
    return {name: getattr(result, name).detach().cpu().clone() for name in names}


def _verification_fields(result) -> dict:
    names = ("x_adv", "target", "distance", "lower_bound", "margin", "optimal", "nodes", "unstable", "start_used")
    out = {name: getattr(result, name).detach().cpu().clone() for name in names}
    out["status"] = list(result.status)
    return out


def _frame(table) -> dict:
    """A DataFrame as its values, index and columns (compared exactly)."""
    return {
        "values": torch.tensor(table.to_numpy(dtype=float)),
        "index": [str(i) for i in table.index],
        "columns": [str(c) for c in table.columns],
    }


def _other_outputs() -> dict:
    """What is not an AttackResult: the solver's penalty problem, the certificate, the exact
    answers of the linear model and of small ReLU networks, the error-vs-ε table."""
    from coursekit import optimality
    from coursekit.attack import solve_penalty
    from coursekit.exact import exact_min_distortion, linear_min_perturbation, linear_weights
    from coursekit.modern_attacks import certified_radius, error_vs_eps
    from coursekit.spectral import layer_bounds

    relu, linear = _relu_net(2), _linear_net(0)
    x = _images(12, 0)
    t_relu, t_linear = _next_label(relu, x), _next_label(linear, x)
    with torch.no_grad():
        y_relu, y_linear = relu(x).argmax(1), linear(x).argmax(1)
    out: dict = {}
    c = torch.logspace(-2, 1, 12)
    out["solve_penalty (relu)"] = {"x": solve_penalty(relu, x, t_relu, c).cpu()}
    out["certified_radius (relu)"] = {"radius": certified_radius(relu, x, y_relu).cpu()}
    out["certified_radius lipschitz=2 (linear)"] = {"radius": certified_radius(linear, x, y_linear, lipschitz=2.0)}
    bounds = layer_bounds(relu, (1, 4, 4))
    out["spectral.layer_bounds (relu)"] = {
        "bound": torch.tensor(bounds["bound"].to_numpy()),
        "types": list(bounds["type"]),
    }
    weight, bias = linear_weights(linear)
    exact = linear_min_perturbation(weight, bias, x, t_linear)
    out["linear_min_perturbation (linear)"] = {
        name: getattr(exact, name).clone() for name in ("r", "distortion", "lower_bound", "violation", "multipliers")
    }
    per_target, best = exact_min_distortion(linear, x, y_linear)
    out["exact_min_distortion (linear)"] = {"per_target": per_target, "best": best}
    for norm in ("inf", "2"):
        table = error_vs_eps(relu, x, y_relu, [0.0, 0.05, 0.1, 0.3] if norm == "inf" else [0.0, 0.5, 1.0], norm=norm)
        out[f"error_vs_eps {norm} (relu)"] = _frame(table)
    try:
        import pyscipopt  # noqa: F401
    except ImportError:
        return out
    from coursekit.verification import exact_relu_distortion, relu_network

    tiny = _relu_net(1, hidden=8, classes=10, scale=4.0)
    with torch.no_grad():
        tiny[3].weight.mul_(4)
    xs = _images(3, 4)
    ts = _next_label(tiny, xs)
    net = relu_network(tiny)
    out["relu_network (tiny)"] = {f"w{k}": torch.from_numpy(w) for k, w in enumerate(net.weights)}
    for norm in ("2", "inf"):
        start = optimality.run_attack("L-BFGS (course)" if norm == "2" else "PGD bisection", tiny, xs, ts, 100)
        result = exact_relu_distortion(tiny, xs, ts, norm=norm, start=start.x_adv)
        out[f"exact_relu_distortion {norm} from a start (tiny)"] = _verification_fields(result)
        result = exact_relu_distortion(tiny, xs[:2], ts[:2], norm=norm)
        out[f"exact_relu_distortion {norm} no start (tiny)"] = _verification_fields(result)
    per_image, summary, exact_runs = optimality.compare_with_exact(tiny, xs, ts, budget=100)
    out["compare_with_exact per_image (tiny)"] = _frame(per_image)
    out["compare_with_exact summary (tiny)"] = _frame(summary)
    for norm, result in exact_runs.items():
        out[f"compare_with_exact exact {norm} (tiny)"] = _verification_fields(result)
    return out


def save(path: Path) -> None:
    torch.set_num_threads(1)
    outputs, passes = {}, {}
    for name, (model, call) in _attack_runs().items():
        with PassCounter(model) as counter:
            result = call()
        outputs[name] = _attack_fields(result)
        n = len(result)
        passes[name] = {
            "images": n,
            "reported": {f: int(getattr(result, f).sum()) for f in PASS_FIELDS},
            "hooks": {"evaluations": counter.forward_backward, "forward_only": counter.forward_only},
        }
        print(f"{name:55s} reported {passes[name]['reported']}  hooks {passes[name]['hooks']}", flush=True)
    outputs.update(_other_outputs())
    torch.save({"outputs": outputs, "passes": passes}, path)
    print(f"saved {len(outputs)} outputs to {path}")


def _equal(a, b) -> bool:
    """Bit for bit: tensors of one dtype and shape whose bytes are the same (so NaN equals NaN
    at the same place, and 0.0 is not −0.0), dicts of equal values, else ==."""
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        return torch.equal(a.contiguous().view(torch.uint8), b.contiguous().view(torch.uint8))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def compare(before: Path, after: Path) -> int:
    old, new = torch.load(before, weights_only=False), torch.load(after, weights_only=False)
    differ = []
    for name, value in old["outputs"].items():
        if name not in new["outputs"]:
            differ.append(f"{name}: missing after")
        elif not _equal(value, new["outputs"][name]):
            keys = [k for k in value if not _equal(value[k], new["outputs"][name].get(k))]
            differ.append(f"{name}: differs in {keys}")
    for name in new["outputs"].keys() - old["outputs"].keys():
        differ.append(f"{name}: new after")
    print(f"{len(old['outputs'])} outputs before, {len(new['outputs'])} after; {len(differ)} differ")
    for line in differ:
        print("  " + line)
    print("\npasses per image (evaluations + forward-only): reported / hooks, before → after")
    for name, b in old["passes"].items():
        a = new["passes"].get(name)
        if a is None:
            continue
        n = b["images"]

        def fmt(p, n=n):
            r, h = p["reported"], p["hooks"]
            return (
                f"{r['evaluations'] / n:7.1f}+{r['forward_only'] / n:5.1f} / "
                f"{h['evaluations'] / n:7.1f}+{h['forward_only'] / n:5.1f}"
            )

        print(f"  {name:55s} {fmt(b)}  →  {fmt(a)}")
    return 1 if differ else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("save").add_argument("path", type=Path)
    both = sub.add_parser("compare")
    both.add_argument("before", type=Path)
    both.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "save":
        save(args.path)
    else:
        sys.exit(compare(args.before, args.after))


if __name__ == "__main__":
    main()
