"""Atomic cache files: written to a temporary file beside the target and renamed into place.

A reader never sees a half-written file; a file that fails to load is reported to the caller,
which rebuilds it (with a warning) instead of crashing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def key_digest(key: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable dictionary: the cache key of a result."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is readable like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def try_load(path: Path) -> Any | None:
    """Load a cache file with ``torch.load(weights_only=True)``; None if absent or unreadable.

    An unreadable (truncated, corrupted) file is removed, so that the caller rebuilds it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to read means: rebuild
        import warnings

        warnings.warn(f"cache file {path} could not be read ({error!s:.80}); rebuilding it", stacklevel=3)
        path.unlink(missing_ok=True)
        return None
