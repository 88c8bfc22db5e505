"""Build tools of the course, run from the repository root (``python -m tools.notebooks sync``);
not part of the ``coursekit`` package that students install."""
