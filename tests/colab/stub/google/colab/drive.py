"""Stand-in for ``google.colab.drive``: ``mount`` makes the folder instead of mounting Drive."""

from __future__ import annotations

import os


def mount(mountpoint: str, force_remount: bool = False, timeout_ms: int = 120_000) -> None:
    """Create ``mountpoint/MyDrive`` (Colab would ask for consent and mount Google Drive there)."""
    os.makedirs(os.path.join(mountpoint, "MyDrive"), exist_ok=True)
    print(f"Mounted at {mountpoint} (stand-in: a local folder)")
