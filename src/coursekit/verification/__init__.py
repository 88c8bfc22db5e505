"""The provable answer for small ReLU networks: exact minimum distortion by mixed-integer programming.

For a ReLU network f (``nn.Linear`` / ``nn.ReLU`` / ``nn.Flatten`` in a chain), an image x
[n pixels in 0..1] and a target label t, ``exact_relu_distortion`` finds

    min |r|   subject to   x + r in [0, 1]^n,   z_t(x + r) − z_j(x + r) ≥ margin for all j ≠ t,

z the logits, |r| = |r|₂ (a mixed-integer quadratic programme, MIQP) or |r|∞ (a mixed-integer
linear programme, MILP), and proves it (Tjeng et al. 2019, MIPVerify; Carlini et al. 2017):

* each hidden unit a = max(ẑ, 0) with pre-activation bounds l ≤ ẑ ≤ u is *stable* (u ≤ 0:
  a = 0; l ≥ 0: a = ẑ) or gets a binary δ and the big-M constraints a ≥ ẑ, a ≥ 0,
  a ≤ ẑ − l(1 − δ), a ≤ u δ, which are exact for δ in {0, 1};
* l and u come from interval arithmetic layer by layer (``layer_bounds``), over the box and,
  when an attack's point is given (``start``), over the ball of its distance around x (no
  closer point lies outside it): for ℓ2 each first-layer bound is the exact maximum over
  ball ∩ box, by a one-variable dual (``_ball_box_max``); deeper layers are tightened by one
  LP per unstable unit (``tighten``);
* the attack's point is also the solver's first incumbent (ℓ2: first replaced by the exact
  optimum of its own activation pattern, ``pattern_qp``, often the answer already);
* ℓ2: SCIP's own handling of |r|² (outer approximation in all 784 pixels, ``formulation=
  "native"``: the issue's probe, 13–48 s per 784-16-10 image) is replaced by cuts in the 16
  first-layer outputs: for z_1 = W r + c, φ(z_1) = min |r|² over the box with that z_1 is
  convex and every dual vector μ gives an affine minorant of it in closed form (``Projection``),
  added lazily by a constraint handler at each LP solution, with extra cuts between the LP
  point and the start (in-out stabilisation, which cut the time ×6); r stays in the LP only to
  keep z_1 reachable. (Measured in benchmarks/RESULTS.md.)
* the solver (SCIP through ``pyscipopt``; HiGHS for the ℓ∞ MILP on request) returns its best
  point and a proven lower bound: the result says "optimal" only when the two are within
  ``gap_tol`` (relative); the point reported is the exact optimum of the solver's activation
  pattern (ℓ2) or the solver's own (ℓ∞), recomputed by the model in float64 (target reached
  with the margin, inside the box, distance as reported) and checked in the model's own dtype
  (the margin above its rounding, the model itself predicting the target) before it is
  reported ("below precision" where only float64 agrees). The bound
  holds up to the solver's tolerances (feasibility 1e-9 for ℓ2, SCIP's defaults for ℓ∞):
  "proven" in floating point, not in exact arithmetic.

Anything else (sigmoid, convolution, max-pooling, a custom forward) is refused by name: no
silent approximation. The solver is an optional dependency: ``pip install pyscipopt`` (one
wheel, also for Colab's Python 3.13); importing this package does not need it.

Distances are reported as norms of r: |r|₂ (``norm="2"``; the paper's distortion is
|r|₂ / sqrt(n), ``VerificationResult.distortion``) or |r|∞ (``norm="inf"``).

The package, one module per part: ``network`` (the network as the MIP reads it, the bounds on
its pre-activations), ``mip`` (the mixed-integer programme), ``cuts`` (ℓ2: the distortion as
cuts in the first layer's outputs), ``solvers`` (SCIP and HiGHS), ``result`` (what a point must
pass, ``VerificationResult``), ``distortion`` (``exact_relu_distortion`` and ``solve_times``) and
``small_networks`` (the ReLU networks to verify). Every public name is re-exported here.
"""

from __future__ import annotations

from .cuts import EXTRA_CUTS, FEASTOL, Projection
from .distortion import DEFAULT_MARGIN, NORMS, START_ATTACKS, exact_relu_distortion, solve_times
from .mip import build_mip, start_values
from .network import ReluNetwork, activation_patterns, input_domain, layer_bounds, pattern_qp, relu_network
from .result import MARGIN_TOL, VerificationResult
from .small_networks import RELU_CODE_VERSION, VERIFY_SIZES, relu_mlp, train_relu_mlp, verify_size
from .solvers import FORMULATIONS, SOLVER_PACKAGE, SOLVERS, solve_highs, solve_scip, solver_available

__all__ = [
    "DEFAULT_MARGIN",
    "EXTRA_CUTS",
    "FEASTOL",
    "FORMULATIONS",
    "MARGIN_TOL",
    "NORMS",
    "RELU_CODE_VERSION",
    "SOLVER_PACKAGE",
    "SOLVERS",
    "START_ATTACKS",
    "VERIFY_SIZES",
    "activation_patterns",
    "build_mip",
    "exact_relu_distortion",
    "input_domain",
    "layer_bounds",
    "pattern_qp",
    "Projection",
    "relu_mlp",
    "relu_network",
    "ReluNetwork",
    "solve_highs",
    "solve_scip",
    "solve_times",
    "solver_available",
    "start_values",
    "train_relu_mlp",
    "VerificationResult",
    "verify_size",
]
