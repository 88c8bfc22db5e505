"""Progress bars for long steps: tqdm.auto (a widget in notebooks, text in terminals).

``COURSEKIT_PROGRESS=text`` forces text bars on stderr (used when the book is built, where a
widget would have no kernel to draw it); ``COURSEKIT_PROGRESS=off`` hides them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


__all__ = ["progress", "record_work"]


def progress(
    iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", enabled: bool = True
) -> Any:
    """A tqdm progress bar over ``iterable`` (or a manual one with ``total``)."""
    mode = os.environ.get("COURSEKIT_PROGRESS", "auto")
    disable = (not enabled) or mode == "off"
    if mode == "text":
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    tqdm.monitor_interval = 0  # no background monitor thread writing into a finished cell
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, mininterval=1.0)


def record_work(kind: str, seconds: float, **fields: Any) -> None:
    """Append one line of JSON about a finished piece of work to ``COURSEKIT_WORKLOG``, if set.

    `make colab` sets it per chapter, so that the chapter's time splits into training, attacks
    and the rest (``benchmarks/colab_budget.py`` turns that into the T4 estimates). ``kind``:
    "train", "attack" or "pool"; ``fields``: sizes (samples, epochs, pairs, evaluations, ...).
    """
    path = os.environ.get("COURSEKIT_WORKLOG")
    if not path:
        return
    import json

    line = json.dumps({"kind": kind, "seconds": round(float(seconds), 3), **fields}, default=str)
    with open(path, "a", encoding="utf-8") as log:  # one short append per record
        log.write(line + "\n")
