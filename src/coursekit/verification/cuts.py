"""ℓ2: the pixels projected out. The distortion |r|² as cuts in the first layer's outputs.

For z_1 = W r + c, φ(z_1) = min |r|² over the box with that z_1 is convex, and every dual vector
μ gives an affine minorant of it in closed form (``Projection``); a SCIP constraint handler adds
them lazily at each LP solution, with extra cuts between the LP point and the start (in-out
stabilisation, ``EXTRA_CUTS``). The MIQP keeps the h first-layer outputs instead of the n pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "EXTRA_CUTS",
    "FEASTOL",
    "Projection",
]


class Projection:
    """φ(y) = min |r|² over lo ≤ r ≤ hi with W r + c = y: the least squared distortion that
    gives the first layer the outputs y [h] (+inf where no r in the box does). W [h, n], c [h].

    φ is convex, and for every μ in R^h weak duality gives the affine minorant
    φ(y) ≥ μ·(y − c) + Σ_i min over lo_i ≤ r_i ≤ hi_i of (r_i² − g_i r_i),   g = Wᵀμ,
    the inner minimiser being clip(g_i / 2, lo_i, hi_i): a valid cut s ≥ μ·y + const for ANY μ,
    tight at y when μ maximises the right-hand side (``cut`` finds it by Newton's method). The
    MIQP keeps y (h variables) instead of r (n = 784), and these cuts replace |r|².
    """

    def __init__(self, w: np.ndarray, c: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: float = 1.0):
        self.w, self.c, self.lo, self.hi, self.scale = w, c, lo, hi, scale
        self.mu = np.zeros(len(c))  # warm start of the next ``cut``

    def _dual(self, mu: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
        g = self.w.T @ mu
        r = np.clip(g / 2, self.lo, self.hi)
        const = float(np.dot(r, r) - np.dot(g, r) - np.dot(mu, self.c))
        return float(np.dot(mu, y)) + const, const, r, (y - self.c) - self.w @ r, (g / 2 > self.lo) & (g / 2 < self.hi)

    def cut(self, y: np.ndarray, iterations: int = 60) -> tuple[np.ndarray, float, float]:
        """(μ, const, value) / ``scale``: the cut s ≥ μ·y' + const, its value μ·y + const at y (≤ φ(y),
        = φ(y) when converged; it grows without bound where φ(y) = inf). Newton's method on
        the dual from the last converged μ or from 0 (whichever is higher), with backtracking;
        where the free pixels' Hessian gives no ascent, the step of the all-free Hessian is
        tried. The constant is lowered by a bound on the rounding error."""
        warm, cold = self._dual(self.mu, y), self._dual(np.zeros(len(y)), y)
        mu, state = (self.mu, warm) if warm[0] > cold[0] else (np.zeros(len(y)), cold)
        full = 0.5 * self.w @ self.w.T
        ridge = 1e-12 * np.trace(full) / len(y) * np.eye(len(y))
        converged = False
        for _ in range(iterations):
            value, const, r, grad, free = state
            if np.abs(grad).max() <= 1e-11 * (1 + np.abs(y - self.c).max()):
                converged = True
                break
            wf = self.w[:, free]
            improved = False
            for hessian in (0.5 * wf @ wf.T + ridge, full + ridge):
                step = np.linalg.solve(hessian, grad)
                for t in 0.5 ** np.arange(40):  # backtrack until the dual rises
                    trial = self._dual(mu + t * step, y)
                    if trial[0] > value:
                        mu, state, improved = mu + t * step, trial, True
                        break
                if improved:
                    break
            if not improved:
                break
        self.mu = mu if converged else np.zeros(len(y))  # warm-start only from a converged μ
        value, const = state[0], state[1]
        slack = 1e-12 * (1 + abs(const) + np.abs(mu).sum() * (1 + np.abs(y).max()))  # rounding
        return mu / self.scale, (const - slack) / self.scale, (value - slack) / self.scale


def _closest(projection: Projection, y: np.ndarray) -> np.ndarray:
    """The r of least |r|² in the box with W r + c = y (the primal point of ``Projection.cut``)."""
    projection.cut(y, iterations=200)
    return np.clip(projection.w.T @ projection.mu / 2, projection.lo, projection.hi)


EXTRA_CUTS = (0.25, 0.5, 0.75)


FEASTOL = 1e-9  # SCIP's feasibility tolerance for the ℓ2 problem (its default 1e-6 would hide small distances)


def _norm_cuts_handler(scip: Any, projection: Projection, y_vars: list, s_var: Any, enforce: bool = True) -> Any:
    """A SCIP constraint handler for s ≥ φ(y): at each LP solution (and candidate solution) it
    computes the tight cut of ``Projection`` and adds it when violated (Kelley/Benders cuts)."""

    class NormCuts(scip.Conshdlr):
        cuts = 0
        center = None

        def _violated(self, sol: Any, add: bool, tol: float) -> bool:
            y = np.array([self.model.getSolVal(sol, v) for v in y_vars])
            s = self.model.getSolVal(sol, s_var)
            mu, const, value = projection.cut(y)
            scale = max(1.0, abs(const), abs(value - const))  # the row's size: SCIP's tolerance is relative
            if value - s <= tol * abs(value) + 10 * FEASTOL * scale:
                return False
            if add:
                self._add(mu, const)
                if self.center is not None:  # in-out: cuts between y and a centre also shape the model
                    for t in EXTRA_CUTS:
                        mu2, const2, _ = projection.cut((1 - t) * y + t * self.center)
                        if float(np.dot(mu2, y)) + const2 > s:
                            self._add(mu2, const2)
            return True

        def _add(self, mu: np.ndarray, const: float) -> None:
            self.model.addCons(
                scip.quicksum(float(m) * v for m, v in zip(mu, y_vars)) - s_var <= -const, removable=True, local=False
            )
            self.cuts += 1

        def conscheck(
            self,
            constraints: Any,
            solution: Any,
            checkintegrality: Any,
            checklprows: Any,
            printreason: Any,
            completely: Any,
        ) -> dict:
            bad = enforce and self._violated(solution, False, 1e-6)
            return {"result": scip.SCIP_RESULT.INFEASIBLE if bad else scip.SCIP_RESULT.FEASIBLE}

        def consenfolp(self, constraints: Any, nusefulconss: Any, solinfeasible: Any) -> dict:
            added = self._violated(None, True, 1e-6)
            return {"result": scip.SCIP_RESULT.CONSADDED if added else scip.SCIP_RESULT.FEASIBLE}

        def consenfops(self, constraints: Any, nusefulconss: Any, solinfeasible: Any, objinfeasible: Any) -> dict:
            bad = self._violated(None, False, 1e-6)  # a pseudo solution: the LP decides
            return {"result": scip.SCIP_RESULT.SOLVELP if bad else scip.SCIP_RESULT.FEASIBLE}

        def conssepalp(self, constraints: Any, nusefulconss: Any) -> dict:
            added = self._violated(None, True, 1e-4)
            return {"result": scip.SCIP_RESULT.CONSADDED if added else scip.SCIP_RESULT.DIDNOTFIND}

        def conslock(self, constraint: Any, locktype: Any, nlockspos: Any, nlocksneg: Any) -> None:
            pass  # dual reductions are switched off instead (misc/allowdualreds = 0)

    return NormCuts()
