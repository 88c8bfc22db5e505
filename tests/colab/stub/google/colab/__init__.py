"""A stand-in for Colab's ``google.colab`` package, for `make colab` only (never installed).

On Colab the kernel imports ``google.colab`` at start-up, so a chapter's first cell sees
``"google.colab" in sys.modules`` and takes its Colab branch (install the course package).
`make colab` starts its kernels with this folder on ``PYTHONPATH`` and ``import google.colab``
run at start-up, so the same branch runs here. Only what the chapters call is provided.
"""

from . import drive, output  # noqa: F401  (Colab's package exposes these submodules)

IN_STAND_IN = True
