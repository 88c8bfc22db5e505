"""coursekit: the tested code behind the course "Intriguing Properties" (Szegedy et al., 2013).

One module per section of the paper:

- ``coursekit.data`` — MNIST offline and verified, the halves P1/P2 (§2)
- ``coursekit.models`` / ``coursekit.train`` — the paper's model zoo, trained once and cached (Table 1, 3)
- ``coursekit.units`` — natural vs random directions of φ(x) (§3)
- ``coursekit.attack`` — the box-constrained L-BFGS attack (§4.1)
- ``coursekit.toy`` — a 2-D classifier where D(x, l) is found by brute force and the penalty path drawn (§4.1)
- ``coursekit.linear`` — a closed-form lower bound on D(x, l) for a linear classifier (§4.1)
- ``coursekit.imagenet`` — Figure 5 on real photos with torchvision's AlexNet (§4.1)
- ``coursekit.transfer`` — cross-model and cross-training-set transfer (§4.2, Tables 2–4)
- ``coursekit.spectral`` — exact Lipschitz bounds of conv and linear layers (§4.3, Table 5)
- ``coursekit.adversarial_training`` — adversarial examples as training data (§4.2)
- ``coursekit.modern_attacks`` — after the paper: FGSM, PGD, C&W, DDN, certified radii, PGD training
- ``coursekit.verification`` — the exact minimum distortion of small ReLU networks (MIP, SCIP; optional)
- ``coursekit.optimality`` — every attack at matched budgets against the best known and the exact optimum

Submodules are imported explicitly (``from coursekit.attack import lbfgs_attack``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
