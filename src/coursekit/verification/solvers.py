"""The solvers of the MIP: SCIP (both norms, through ``pyscipopt``) and HiGHS (the ℓ∞ MILP).

Both are optional dependencies: importing the package needs neither; ``solver_available`` says
whether SCIP is there, and a missing one raises an ImportError naming the pip command.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_choice
from .cuts import FEASTOL, _norm_cuts_handler
from .mip import _Mip

__all__ = [
    "FORMULATIONS",
    "solve_highs",
    "solve_scip",
    "solver_available",
    "SOLVER_PACKAGE",
    "SOLVERS",
]


SOLVERS = ("scip", "highs")


SOLVER_PACKAGE = "pyscipopt"


def _scip() -> Any:
    """pyscipopt, or an ImportError that names the package and the pip command."""
    try:
        import pyscipopt
    except ImportError:
        raise ImportError(
            f"exact verification needs the SCIP solver: `pip install {SOLVER_PACKAGE}` "
            f"(or `pip install coursekit[verify]`)"
        ) from None
    return pyscipopt


def solver_available() -> bool:
    """Whether the MIP solver (pyscipopt) can be imported.

    Used in chapter 7b (book/07b_certificates_and_defences.md).
    """
    try:
        _scip()
    except ImportError:
        return False
    return True


@dataclass
class _Solved:
    """What the solver returns for one MIP: the best solution's variables (None if none), the
    proven lower bound on the objective (+inf when it proved infeasibility), SCIP's status word,
    branch-and-bound nodes, seconds, and the cuts of ``Projection`` it added (ℓ2)."""

    values: np.ndarray | None
    dual: float
    status: str
    nodes: int
    seconds: float
    cuts: int = 0


def _scip_model(scip: Any, mip: _Mip, time_limit: float, gap_tol: float, options: dict) -> tuple[Any, list]:
    """A SCIP model of ``mip`` (one thread, quiet) and its variables."""
    model = scip.Model()
    model.hideOutput()
    model.setParam("limits/time", float(time_limit))
    model.setParam("limits/gap", float(gap_tol))
    model.setParam("lp/threads", 1)
    for key, value in options.items():
        model.setParam(key, value)
    v = [
        model.addVar(lb=lb, ub=None if math.isinf(ub) else ub, vtype="B" if integer else "C", obj=cost)
        for lb, ub, integer, cost in zip(mip.lb, mip.ub, mip.integer, mip.cost)
    ]
    for columns, coefficients, lo, hi in mip.rows:
        expr = scip.quicksum(c * v[i] for i, c in zip(columns.tolist(), coefficients.tolist()))
        if lo == hi:
            model.addCons(expr == lo)
        elif math.isinf(lo):
            model.addCons(expr <= hi)
        else:
            model.addCons(expr >= lo)
    return model, v


FORMULATIONS = ("projected", "native", "native+cuts")


def _l2_objective(
    scip: Any, model: Any, v: list, mip: _Mip, start: np.ndarray | None, formulation: str
) -> tuple[Any, list]:
    """The ℓ2 objective s ≥ |r|² / scale in SCIP (see ``solve_scip``); returns the cut handler
    (or None) and the variables s_i ≥ r_i² of the native formulation (or [])."""
    y_vars, s_var = [v[i] for i in mip.first], v[mip.objective]  # type: ignore[union-attr]
    handler, squares = None, []
    if formulation != "projected":
        squares = [model.addVar(lb=0.0) for _ in mip.r]  # type: ignore[union-attr]
        for si, i in zip(squares, mip.r):  # type: ignore[arg-type]
            model.addCons(si >= v[i] * v[i])
        model.addCons(mip.scale * s_var >= scip.quicksum(squares))
    if formulation == "native":
        return handler, squares
    if formulation == "projected":
        model.setParam("misc/allowstrongdualreds", False)
        model.setParam("misc/allowweakdualreds", False)
        model.setParam("numerics/feastol", FEASTOL)
        model.setParam("separating/aggregation/freq", -1)  # its c-MIR cuts cost a third of the time here
    handler = _norm_cuts_handler(scip, mip.projection, y_vars, s_var, enforce=formulation == "projected")  # type: ignore[arg-type]
    model.includeConshdlr(
        handler,
        "distortion",
        "s >= min |r|^2 over r giving z_1",
        sepapriority=1,
        enfopriority=-1,
        chckpriority=-1,
        sepafreq=1,
        propfreq=-1,
        eagerfreq=-1,
        maxprerounds=0,
        delaysepa=False,
        delayprop=False,
        needscons=False,
    )
    if start is not None:  # the tight cut at the start, and the start as the in-out centre
        handler.center = start[mip.first]
        mu, const, _ = mip.projection.cut(start[mip.first])  # type: ignore[union-attr]
        model.addCons(scip.quicksum(float(m) * y for m, y in zip(mu, y_vars)) - s_var <= -const)
    return handler, squares


def solve_scip(
    mip: _Mip,
    *,
    start: np.ndarray | None = None,
    time_limit: float = 60.0,
    gap_tol: float = 1e-4,
    options: dict | None = None,
    statistics: str | None = None,
    formulation: str = "projected",
) -> _Solved:
    """Solve ``mip`` with SCIP on one thread. ``start``: a full assignment, tried as the first
    incumbent. ℓ2 (``mip.projection``), ``formulation``: "projected": s ≥ φ(z_1) by the cuts
    of ``_norm_cuts_handler`` only, with in-out cuts towards the start (dual reductions off,
    since the handler does not lock variables; SCIP's feasibility tolerance 1e-9; no c-MIR
    cuts, measured slower);
    "native": SCIP's own s ≥ Σ s_i, s_i ≥ r_i² (the issue's probe); "native+cuts": both (the
    cuts as valid inequalities). ``options``: SCIP parameters; ``statistics``: a file for SCIP's."""
    check_choice("formulation", formulation, FORMULATIONS)
    scip = _scip()
    model, v = _scip_model(scip, mip, time_limit, gap_tol, options or {})
    handler, squares = (None, []) if mip.projection is None else _l2_objective(scip, model, v, mip, start, formulation)
    if start is not None:
        sol = model.createSol()
        for var, value in zip(v, start):
            model.setSolVal(sol, var, float(value))
        for si, i in zip(squares, mip.r if squares else []):  # type: ignore[arg-type]
            model.setSolVal(sol, si, float(start[i]) ** 2)
        model.addSol(sol, free=True)
    began = time.perf_counter()
    try:
        model.optimize()
        status = model.getStatus()
    except Exception:  # noqa: BLE001 - SCIP aborts on LP trouble it cannot resolve: keep what it has
        status = "error"
    seconds = time.perf_counter() - began
    if statistics:
        model.writeStatistics(statistics)
    values = None
    if model.getNSols() > 0:
        best = model.getBestSol()
        values = np.array([model.getSolVal(best, var) for var in v])
    dual = math.inf if status == "infeasible" else -math.inf if status == "error" else model.getDualbound()
    return _Solved(values, dual, status, int(model.getNNodes()), seconds, handler.cuts if handler else 0)


def _highs() -> Any:
    try:
        import highspy
    except ImportError:
        raise ImportError("the HiGHS MILP solver is missing: `pip install highspy`") from None
    return highspy


def solve_highs(
    mip: _Mip,
    *,
    start: np.ndarray | None = None,
    time_limit: float = 60.0,
    gap_tol: float = 1e-4,
    options: dict | None = None,
) -> _Solved:
    """Solve an ℓ∞ ``mip`` (an MILP) with HiGHS (``highspy``) on one thread, ``start`` as its
    first incumbent. HiGHS has no mixed-integer quadratic solver, so ℓ2 is SCIP's alone."""
    if mip.projection is not None:
        raise ValueError("HiGHS solves MILPs only; the ℓ2 problem (an MIQP) needs SCIP")
    highspy = _highs()
    from scipy import sparse

    h = highspy.Highs()
    for key, value in {
        "output_flag": False,
        "threads": 1,
        "time_limit": float(time_limit),
        "mip_rel_gap": float(gap_tol),
        **(options or {}),
    }.items():
        h.setOptionValue(key, value)
    inf = highspy.kHighsInf
    rows = [(k, c, v) for k, (cols, vals, _, _) in enumerate(mip.rows) for c, v in zip(cols, vals)]
    k, c, v = (np.array(part) for part in zip(*rows))
    a = sparse.csc_matrix((v, (k, c)), shape=(len(mip.rows), len(mip.lb)))
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(mip.lb), len(mip.rows)
    lp.col_cost_ = np.array(mip.cost, dtype=float)
    lp.col_lower_, lp.col_upper_ = np.array(mip.lb, dtype=float), np.minimum(np.array(mip.ub, dtype=float), inf)
    lp.row_lower_ = np.maximum(np.array([r[2] for r in mip.rows]), -inf)
    lp.row_upper_ = np.minimum(np.array([r[3] for r in mip.rows]), inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = a.indptr, a.indices, a.data
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in mip.integer]
    h.passModel(lp)
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = list(map(float, start))
        solution.value_valid = True
        h.setSolution(solution)
    began = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - began
    status = h.modelStatusToString(h.getModelStatus()).lower()
    info = h.getInfo()
    values = np.array(h.getSolution().col_value) if info.primal_solution_status == 2 else None
    dual = math.inf if status == "infeasible" else info.mip_dual_bound
    return _Solved(values, dual, status, int(info.mip_node_count), seconds)
