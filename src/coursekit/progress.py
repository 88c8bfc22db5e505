"""Progress bars for long steps: tqdm.auto (a widget in notebooks, text in terminals).

``COURSEKIT_PROGRESS=text`` forces text bars on stderr (used when the book is built, where a
widget would have no kernel to draw it); ``COURSEKIT_PROGRESS=off`` hides them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", enabled: bool = True):
    """A tqdm progress bar over ``iterable`` (or a manual one with ``total``)."""
    mode = os.environ.get("COURSEKIT_PROGRESS", "auto")
    disable = (not enabled) or mode == "off"
    if mode == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    tqdm.monitor_interval = 0  # no background monitor thread writing into a finished cell
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, mininterval=1.0)
