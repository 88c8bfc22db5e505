"""Chapter 7b's tables and sentences (certificates, exact verification, PGD training, masking
checks), formatted from the computation: the chapter's cells call these instead of building
sentences themselves.

Distortions are in the paper's per-pixel RMS units (‖r‖₂ / √n) unless a docstring says
otherwise; rates and errors are fractions in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .findings import AGREES, DIFFERS, UNDECIDED, Finding

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from .records import Record

__all__ = [
    "ATTACK_LABELS",
    "EXACT_RECORD",
    "SEEDS_RECORD",
    "chapter_images",
    "defence_table",
    "exact_record_table",
    "bound_chain",
    "certificate_sentence",
    "certificate_table",
    "chain_sentence",
    "exact_sentence",
    "masking_checks",
    "masking_sentence",
    "one_seed_sentence",
    "robustness_sentence",
    "seeds_change",
    "seeds_sentence",
    "solve_cost_sentence",
    "training_findings",
    "ug100_table",
    "verification_findings",
]

# Short names of ``optimality.compare_with_exact``'s attacks, as the chapter and its record show them.
ATTACK_LABELS = {
    "L-BFGS, polish=0 (paper)": "L-BFGS, paper's",
    "L-BFGS (course)": "L-BFGS + polish (ours)",
    "C&W-L2": "C&W",
    "FMN-L2": "FMN",
    "PGD bisection": "PGD, ε bisected",
    "FMN-Linf": "FMN",
}

# The chapter's recorded larger runs (``benchmarks/records/07b_certificates_and_defences.py``).
EXACT_RECORD, SEEDS_RECORD = "07b_exact", "07b_pgd_seeds"


def chapter_images(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The chapter's test images: the first ``count`` of a random order of MNIST's 10,000 test
    images (seed 1, as part a), as (x [count, 1, 28, 28] in [0, 1], labels [count])."""
    import torch

    from .data import load_mnist

    x_test, y_test = load_mnist("test")
    if not isinstance(count, int) or not 0 < count <= len(x_test):
        raise ValueError(f"count must be an int in 1..{len(x_test)}, got {count!r}")
    order = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(1))[:count]
    return x_test[order], y_test[order]


def exact_record_table(summary: pd.DataFrame, proven: Mapping[str, int]) -> pd.DataFrame:
    """``compare_with_exact``'s summary (attacks renamed by ``ATTACK_LABELS``) as one flat
    table for a record: rows "<norm> <attack>" (e.g. "ℓ2 L-BFGS, paper's"), columns "passes/ex",
    "success", "mean ratio", "worst ratio" and "images" (the images whose optimum in that norm
    was proven: ``proven`` {"ℓ2": n, "ℓ∞": n})."""
    flat = summary.copy()
    flat.index = [f"{norm} {attack}" for norm, attack in summary.index]
    missing = {norm for norm, _ in summary.index} - set(proven)
    if missing:
        raise ValueError(f"proven lacks the norms {sorted(missing)}")
    flat["images"] = [float(proven[norm]) for norm, _ in summary.index]
    flat.index.name = "norm and attack"
    return flat


def _pairs(certificates: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    if not certificates:
        raise ValueError("certificates must not be empty")
    for name, pair in certificates.items():
        if len(pair) != 2 or pair[0].shape != pair[1].shape or pair[0].ndim != 1:
            raise ValueError(f"certificates[{name!r}] must be (radius [N], found [N]) of the same length")


def certificate_table(certificates: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> pd.DataFrame:
    """One row per model from {name: (certified radius [N], distortion found [N])}, both ≥ 0:
    ``certified`` (share of images with a positive radius: the correctly classified ones),
    ``mean radius`` and ``mean found`` over those images, ``median ratio`` (found / radius,
    per image, over those images) and ``inside`` (images whose found distortion is below the
    radius: 0 whenever the certificate holds).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import pandas as pd

    _pairs(certificates)
    rows = {}
    for name, (radius, found) in certificates.items():
        kept = radius > 0
        if not kept.any():
            raise ValueError(f"certificates[{name!r}] has no positive radius (no image certified)")
        radius, found = radius[kept].double(), found[kept].double()
        rows[name] = {
            "certified": kept.double().mean().item(),
            "mean radius": radius.mean().item(),
            "mean found": found.mean().item(),
            "median ratio": (found / radius).quantile(0.5).item(),  # the mean of the middle two
            "inside": int((found < radius * (1 - 1e-6)).sum()),
        }
    return pd.DataFrame(rows).T.astype({"inside": int})


def certificate_sentence(table: pd.DataFrame) -> str:
    """What ``certificate_table`` says: where the truth lies, how far apart the two bounds are
    per model, and whether the gap is wider for the model of the last row (the deeper one).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    ratios = ", ".join(f"{r:.3g} times the radius on {name}" for name, r in table["median ratio"].items())
    inside = int(table["inside"].sum())
    text = (
        "The truth lies between the two numbers: no adversarial example is closer than the "
        "certified radius, and one is known at the distortion found. Here the distortion found is "
        f"a median {ratios}. "
    )
    if len(table) > 1:
        first, last = table.index[0], table.index[-1]
        if table.loc[last, "median ratio"] > table.loc[first, "median ratio"]:
            text += (
                f"The gap is wider for {last}: the product of layer bounds assumes that each "
                "layer's worst direction lines up with the next one's. "
            )
        else:
            text += f"The gap is not wider for {last} here. "
    if inside:
        text += f"On {inside} images an attack found an example inside the radius: a bug, since the radius is a proof."
    else:
        text += "No attack found an example inside a certified radius, as the proof says."
    return text.strip()


def bound_chain(columns: Mapping[str, torch.Tensor], keep: torch.Tensor) -> pd.DataFrame:
    """The chain of bounds image by image: ``columns`` {name: distance [N]} from the smallest
    bound to the largest (certificate, exact without the box, exact in the box, found),
    restricted to the images where ``keep`` [N] (bool) is True. A DataFrame [kept, columns].

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import pandas as pd
    import torch

    if len(columns) < 2:
        raise ValueError(f"columns must hold at least two bounds, got {list(columns)}")
    sizes = {tuple(v.shape) for v in columns.values()} | {tuple(keep.shape)}
    if len(sizes) != 1 or keep.dtype != torch.bool:
        raise ValueError(f"columns and keep must be [N] of one length, keep bool; got shapes {sizes}, {keep.dtype}")
    frame = pd.DataFrame({k: v.detach().double().cpu().numpy() for k, v in columns.items()})
    return frame[keep.cpu().numpy()].reset_index(drop=True)


def chain_sentence(chain: pd.DataFrame, tolerance: float = 1e-6) -> str:
    """``bound_chain``'s table in words: each step's median factor (each column over the one
    before, per image) and whether every image's chain is ordered (within ``tolerance``).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import numpy as np

    if chain.shape[1] != 4 or chain.empty:
        raise ValueError(f"chain must have 4 columns and some rows, got {chain.shape}")
    values = chain.to_numpy()
    step = [float(x) for x in np.median(values[:, 1:] / values[:, :-1], axis=0)]
    ordered = bool((values[:, 1:] >= values[:, :-1] - tolerance).all())
    return (
        f"Over the {len(chain)} correctly classified images, the exact radius without the box is a "
        f"median {step[0]:.2f} times the certificate (each pair's own length against √2‖W‖₂); the "
        f"box multiplies it by {step[1]:.2f} more; and DDN's examples are a median {step[2]:.3f} "
        f"times the exact minimum in the box. The chain holds on {'every image' if ordered else 'not every image'}."
    )


def exact_sentence(
    summary: pd.DataFrame,
    per_image: pd.DataFrame,
    proven: int,
    images: int,
    *,
    paper: str,
    ours: str,
    larger_images: int,
) -> str:
    """What the comparison with the exact optimum says (``optimality.compare_with_exact``'s
    ``summary`` and ``per_image``, attacks renamed): how far the paper's method (row ``paper``)
    and ours (row ``ours``) land beyond the proven ℓ2 optimum on ``proven`` of ``images``
    images, the closest attack per norm, and that ``images`` examples are not an estimate (the
    gpu profile solves ``larger_images``).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    l2, linf = summary.xs("ℓ2")["mean ratio"], summary.xs("ℓ∞")["mean ratio"]
    for name in (paper, ours):
        if name not in l2.index:
            raise ValueError(f"no ℓ2 row {name!r} in summary (rows: {list(l2.index)})")
    text = (
        f"On {proven} of {images} images with a proven ℓ2 optimum the paper's method lands "
        f"{l2[paper] - 1:.1%} beyond it on average, our polished attack {l2[ours] - 1:.2%}; the "
        f"closest in ℓ2 is {l2.idxmin()} and in ℓ∞ {linf.idxmin()} ({linf.min() - 1:+.1%}). "
    )
    if (per_image < 1).any().any():
        text += "(A ratio a hair below 1: an attack point with a margin below the solver's 10⁻³.) "
    return text + (f"With {images} images these are examples, not estimates; the gpu profile solves {larger_images}.")


# Our ℓ∞ attacks under UG100's names (the PGD bisection is their PGD's minimum-ε search).
_UG100_NAMES = {"PGD, ε bisected": "PGD", "PGD bisection": "PGD", "FMN-Linf": "FMN"}


def ug100_table(linf_ratios: pd.DataFrame, optimum: torch.Tensor) -> pd.DataFrame:
    """Our ℓ∞ overestimates in both statistics beside UG100's (``paper.UG100_LINF``).

    ``linf_ratios``: per image (rows) and attack (columns), the attack's ℓ∞ distance over the
    proven optimum (NaN where not proven or failed); ``optimum`` [N]: the proven ℓ∞ distances
    (NaN where not proven). Columns: "ours: mean of per-image ratios" (our statistic), "ours:
    ratio of mean distances" (UG100's, for one network), UG100's own figure (ratio of mean
    distances per network, averaged over their 9 networks; untargeted) and the per-image
    statistic on UG100's data, as strings with signs (+11.0%). Our PGD bisection is the row
    "PGD"; the best of our pool is the per-image minimum over the attacks.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import numpy as np
    import pandas as pd

    from .paper import UG100_LINF

    opt = optimum.detach().double().cpu().numpy()
    if linf_ratios.shape[0] != len(opt):
        raise ValueError(f"linf_ratios has {linf_ratios.shape[0]} rows, optimum {len(opt)} images")
    ratios = {_UG100_NAMES.get(name, name): values for name, values in linf_ratios.items()}
    ratios["best of a pool"] = linf_ratios.min(axis=1, skipna=True)
    rows = {}
    for name, values in ratios.items():
        r = values.to_numpy(float)
        known = np.isfinite(r) & np.isfinite(opt)
        if not known.any():
            ours = ("—", "—")
        else:
            mean_ratio = r[known].mean() - 1
            of_means = (r[known] * opt[known]).sum() / opt[known].sum() - 1
            ours = (f"{mean_ratio:+.1%}", f"{of_means:+.1%}")
        theirs: Mapping[str, str] = UG100_LINF.get(name, {})
        rows[name] = {
            "ours: mean of per-image ratios": ours[0],
            "ours: ratio of mean distances": ours[1],
            "UG100: ratio of means (their statistic)": theirs.get("ratio of means", "—"),
            "UG100: mean of per-image ratios": theirs.get("mean of ratios", "—"),
        }
    for name, theirs in UG100_LINF.items():
        if name not in rows:
            rows[name] = {
                "ours: mean of per-image ratios": "not run",
                "ours: ratio of mean distances": "not run",
                "UG100: ratio of means (their statistic)": theirs.get("ratio of means", "—"),
                "UG100: mean of per-image ratios": theirs.get("mean of ratios", "—"),
            }
    return pd.DataFrame(rows).T


def solve_cost_sentence(costs: pd.DataFrame, l2_seconds: float, linf_seconds: float) -> str:
    """``verification.solve_times``' table (first row the narrowest network) in words, with
    the mean seconds per image of the ℓ2 and ℓ∞ solves of the comparison.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    if len(costs) < 2:
        raise ValueError(f"costs must compare at least two networks, got {len(costs)}")
    first, last = costs.index[0], costs.index[-1]
    grow = costs.loc[last, "mean s/image"] / costs.loc[first, "mean s/image"]
    return (
        f"The ℓ2 solves of the comparison took {l2_seconds:.1f} s per image at the smallest width, the "
        f"ℓ∞ ones {linf_seconds:.1f} s. From {first} to {last} the mean unstable units go from "
        f"{costs.loc[first, 'unstable units']:.0f} to {costs.loc[last, 'unstable units']:.0f} and the "
        f"ℓ∞ solve time is {grow:.1f} times as long ({int(costs.loc[last, 'proven'])} of "
        f"{int(costs.loc[last, 'images'])} proven within the time limit). `benchmarks/optimality.py "
        "--timing` measures wider and deeper networks."
    )


def robustness_sentence(training: pd.DataFrame, *, base: str, trained: str, eps: float, images: int) -> str:
    """What the training bought, from the chapter's table (rows: models; columns "PGD", the
    robust error at ``eps`` on ``images`` images, and "min. dist.", DDN's mean ℓ2 distortion):
    the ``trained`` row against the ``base`` row, in the threat model trained for (ℓ∞) and in
    another (ℓ2).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    for name in (base, trained):
        if name not in training.index:
            raise ValueError(f"no row {name!r} in training (rows: {list(training.index)})")
    before, after = training.loc[base], training.loc[trained]
    moved = "lowered" if after["PGD"] < before["PGD"] else "did not lower"
    factor = after["min. dist."] / before["min. dist."]
    return (
        f"Mixed PGD training {moved} PGD's error at ε = {eps:g} from {before['PGD']:.0%} to "
        f"{after['PGD']:.0%} on our {images} images, and multiplied the ℓ2 distortion DDN needs by "
        f"{factor:.2f}: robustness is bought for one threat model (ℓ∞, ε = {eps:g}), and adversarial "
        "examples remain in others."
    )


def one_seed_sentence(change: Mapping[str, Any], *, trained: str, plain: str) -> str:
    """The clean-error comparison of two networks of one seed each (``report.paired_error_change``
    of the ``plain`` network as a and the ``trained`` one as b), and what one seed allows: that
    *these two networks* differ (or not), not what the training costs.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    p = change["p_value"]
    direction = "lower" if change["error_b"] < change["error_a"] else "higher"
    told = "unlikely by chance" if p < 0.05 else "one this test cannot tell from chance"
    return (
        f"On all {change['n']:,} test images the {trained} network errs on {change['error_b']:.2%}, the "
        f"{plain} one on {change['error_a']:.2%}: a {direction} error, {told} (exact McNemar test, "
        f"p = {p:.2g}; {change['only_b']} images only the first gets wrong, {change['only_a']} only the "
        "second). That compares these two networks, one training seed each; two seeds of the same "
        "training differ by as much (chapter 6), so what the training costs needs several seeds."
    )


def seeds_change(plain: Sequence[float], trained: Sequence[float], alpha: float = 0.05) -> dict:
    """The clean-error change of a training over seeds, paired by seed (the same initialisation
    and minibatch order): ``plain``, ``trained`` test errors in [0, 1], one per seed, n ≥ 2.
    Returns ``n``, ``mean`` and ``sd`` of the change (points), ``t`` and ``p`` (two-sided paired
    t-test; NaN when every change is equal) and ``verdict``: "raised" or "lowered" (p < alpha)
    or "not shown" (the change is within the seed-to-seed spread).

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import numpy as np
    from scipy.stats import ttest_rel

    a, b = np.asarray(plain, dtype=float), np.asarray(trained, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or len(a) < 2:
        raise ValueError(f"plain and trained must be 1-D of one length ≥ 2, got shapes {a.shape}, {b.shape}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    change = 100 * (b - a)
    sd = float(change.std(ddof=1))
    test = ttest_rel(b, a) if sd > 0 else None
    t, p = (float(test.statistic), float(test.pvalue)) if test is not None else (math.nan, math.nan)
    verdict = "not shown" if not p < alpha else ("raised" if change.mean() > 0 else "lowered")
    return {"n": len(a), "mean": float(change.mean()), "sd": sd, "t": t, "p": p, "verdict": verdict}


def seeds_sentence(test: Mapping[str, Any]) -> str:
    """``seeds_change``'s result in words.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    outcome = {
        "raised": "raises the clean error",
        "lowered": "lowers the clean error",
        "not shown": "changes the clean error by no more than the seeds do",
    }[test["verdict"]]
    return (
        f"Over {test['n']} seeds the training changes the clean error by {test['mean']:+.2f} points on "
        f"average (standard deviation {test['sd']:.2f}; paired t-test p = {test['p']:.2g}): it {outcome}."
    )


def _rate(result: Any) -> float:
    """The share of images on which an attack succeeded."""
    return result.success.float().mean().item()


def defence_table(
    models: Mapping[str, torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    eps: float,
    pgd_steps: int,
    ddn_steps: int,
) -> tuple[pd.DataFrame, dict]:
    """The chapter's training table: per model (rows), the clean error on (``x_test``,
    ``y_test``), the robust error at ℓ∞ ``eps`` found by FGSM and by PGD (``pgd_steps``) on the
    attacked images (``x`` [N, 1, 28, 28] in [0, 1], ``y`` [N]), untargeted DDN's success
    (``ddn_steps``) and its mean ℓ2 distortion over the images it moved (per-pixel RMS).
    Returns (table, {model: its PGD result}) — the PGD examples serve the masking checks.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import pandas as pd

    from .modern_attacks import ddn, fgsm, pgd
    from .train import evaluate

    rows, adversaries = {}, {}
    for name, model in models.items():
        adversaries[name] = pgd(model, x, y, eps, steps=pgd_steps)
        least = ddn(model, x, y=y, steps=ddn_steps)
        rows[name] = {
            "clean": evaluate(model, x_test, y_test),
            "FGSM": _rate(fgsm(model, x, y, eps)),
            "PGD": _rate(adversaries[name]),
            "DDN success": _rate(least),
            "min. dist.": least.distortion[least.success].mean().item(),
        }
    return pd.DataFrame(rows).T, adversaries


def masking_checks(
    models: Mapping[str, torch.nn.Module],
    training: pd.DataFrame,
    transferred: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    pgd_steps: int,
    large_eps: float = 0.5,
    nearly_all: float = 0.95,
) -> pd.DataFrame:
    """Four checks for gradient masking (Carlini et al., 2019) per model (rows), from the
    training table (``defence_table``): "PGD ≥ FGSM" (many steps beat one); "PGD ≥ transfer"
    (white-box beats the ``transferred`` examples [N, 1, 28, 28], made on another model, whose
    error is the "transfer" column); "large ε fools" (PGD at ``large_eps`` fools at least
    ``nearly_all`` of the images, its error in "error at large ε"); "DDN 100%" (the unbounded
    attack succeeds on every image). Boolean columns are the checks; the others their values.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    import pandas as pd

    from .modern_attacks import pgd
    from .train import predict

    rows = {}
    for name, model in models.items():
        row = training.loc[name]
        moved = (predict(model, transferred).cpu() != y.cpu()).float().mean().item()
        large = _rate(pgd(model, x, y, large_eps, steps=pgd_steps))
        rows[name] = {
            "PGD ≥ FGSM": bool(row["PGD"] >= row["FGSM"]),
            "PGD ≥ transfer": bool(row["PGD"] >= moved),
            "large ε fools": bool(large >= nearly_all),
            "DDN 100%": bool(row["DDN success"] == 1.0),
            "transfer": moved,
            "error at large ε": large,
        }
    checks = pd.DataFrame(rows).T
    flags = ["PGD ≥ FGSM", "PGD ≥ transfer", "large ε fools", "DDN 100%"]
    return checks.astype({c: bool for c in flags} | {"transfer": float, "error at large ε": float})


def masking_sentence(checks: pd.DataFrame) -> str:
    """The masking checks' table (rows: models; boolean columns: the checks; other columns are
    values and are ignored) in words: which checks failed on which model, or that all passed.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    flags = checks.select_dtypes(include="bool")
    if flags.empty:
        raise ValueError("checks has no boolean column (the checks' outcomes)")
    failed = [(model, check) for model, row in flags.iterrows() for check, ok in row.items() if not ok]
    if not failed:
        return f"All {flags.shape[1]} checks pass on all {len(flags)} models: no sign of a masked gradient."
    listed = "; ".join(f"{model}: check {check}" for model, check in failed)
    return f"Failed: {listed}. There the gradient attack under-reports: that model's robust error above is too low."


def _record_value(record: Record, row: str, column: str) -> float:
    table = record.table()
    if row not in table.index or column not in table.columns:
        raise ValueError(f"record {record.name!r} has no [{row!r}, {column!r}]")
    return float(table.loc[row, column])


def verification_findings(
    table: pd.DataFrame, summary: pd.DataFrame | None, *, paper: str, record: Record | None
) -> list[Finding]:
    """The certificate and exact-verification rows of "What this run found".

    ``table``: ``certificate_table``; ``summary``: ``compare_with_exact``'s summary (None when no
    solver ran); ``paper``: the ℓ2 row of the paper's method; ``record``: the recorded larger
    run (``07b_exact``, rows "<norm> <attack>", columns "mean ratio", "images") or None.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    inside = int(table["inside"].sum())
    ratios = ", ".join(f"{n} {r:.3g}×" for n, r in table["median ratio"].items())
    rows = [
        Finding(
            "§4.3 small bounds guarantee no examples: certified radius (found / radius, median)",
            f"none inside; {ratios}" if not inside else f"{inside} inside the radius",
            "a guarantee, no radius computed",
            AGREES if not inside else DIFFERS,
        )
    ]
    if summary is None:
        return rows
    ratio = summary.xs("ℓ2")["mean ratio"][paper]
    worst = summary.xs("ℓ2")["worst ratio"][paper]
    larger = "not recorded yet"
    if record is not None:
        recorded = _record_value(record, f"ℓ2 {paper}", "mean ratio")
        images = _record_value(record, f"ℓ2 {paper}", "images")
        larger = f"{recorded - 1:+.1%} ({images:.0f} images, {record.provenance['profile']})"
    rows.append(
        Finding(
            "§4.1 L-BFGS approximates D(x, l): the paper's method over the proven optimum (ReLU net)",
            f"{ratio - 1:+.1%} (worst {worst - 1:+.1%})",
            "an approximation, no size given",
            AGREES if worst > 1 + 1e-3 else DIFFERS,
            larger,
        )
    )
    return rows


def training_findings(
    training: pd.DataFrame,
    *,
    base: str,
    trained: str,
    one_seed: Mapping[str, Any],
    record: Record | None,
) -> list[Finding]:
    """The PGD-training rows of "What this run found".

    ``training``: the chapter's table (rows: models; columns "clean", "PGD", "DDN success",
    "min. dist."); ``base``: the weight-decay row; ``trained``: the PGD-trained row;
    ``one_seed``: ``report.paired_error_change`` of the plain network trained as long (a) and
    the trained one (b); ``record``: the recorded seeds (``07b_pgd_seeds``: one row per seed,
    columns "plain clean", "trained clean") or None.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    larger = "not recorded yet"
    if record is not None:
        seeds = record.table()
        test = seeds_change(seeds["plain clean"], seeds["trained clean"])
        larger = (
            f"{test['mean']:+.2f} points over {test['n']} seeds (p = {test['p']:.2g}): {test['verdict']} "
            f"({record.provenance['profile']})"
        )
    change = 100 * (one_seed["error_b"] - one_seed["error_a"])
    row = training.loc[trained]
    factor = row["min. dist."] / training.loc[base, "min. dist."]
    return [
        Finding(
            "§4.2 adversarial training might improve generalisation: clean error, mixed PGD training",
            f"{change:+.2f} points against the same net, one seed (p = {one_seed['p_value']:.2g})",
            "pools: 1.6% → below 1.2%, one run",
            UNDECIDED,
            larger,
        ),
        Finding(
            "§4.2 close examples for each sample: DDN against the PGD-trained network",
            f"success {row['DDN success']:.0%}, at ×{factor:.2f} the weight-decay model's distortion",
            "found for every sample",
            AGREES if row["DDN success"] == 1 else DIFFERS,
        ),
    ]
