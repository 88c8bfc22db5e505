"""CPU threads: how many torch uses for heavy CPU work, chosen once at set-up.

torch's default (one intra-op thread per core) is fastest on an idle machine but collapses when
another CPU-bound process shares the cores: its OpenMP threads wait for each other at every
operation (measured in benchmarks/RESULTS.md, "Threads on a busy machine"). On an idle 2-core
machine (CI, Colab's CPU runtime) two threads are 1.4-1.7x faster than one (measured side by
side, same file). So by default ("auto") the count is chosen once, at set-up
(``config.use_options``, a benchmark's start: :func:`apply_cpu_threads`), from what the other
processes are using then on the CPUs this process may run on (its affinity, within its cgroup's
CPU quota); a count the caller set with ``torch.set_num_threads`` is kept; ``COURSEKIT_THREADS``
fixes a count, or "torch" keeps torch's own. Library functions (training, attacks) never change
the count.

Used by every chapter's option cell (through ``config.use_options``) and by the benchmarks.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from ._checks import default_device

__all__ = [
    "CGROUP_ROOT",
    "PROC_SELF_CGROUP",
    "PROC_STAT",
    "allowed_cpus",
    "apply_cpu_threads",
    "cgroup_cpu_quota",
    "cpu_threads",
    "other_cpu_load",
]


_TORCH_THREADS = torch.get_num_threads()  # torch's count when coursekit was imported: its default
_APPLIED: list[int] = []  # the counts apply_cpu_threads set: coursekit's own, not the caller's
PROC_STAT = "/proc/stat"
PROC_SELF_CGROUP = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (``os.sched_getaffinity``; all of them where that is
    not available)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _cgroup_paths() -> list[Path]:
    """The folders of this process's cgroup and its ancestors that may hold a CPU quota:
    cgroup v2 (``0::/path``) under CGROUP_ROOT and v1's ``cpu`` controller under CGROUP_ROOT/cpu."""
    try:
        lines = Path(PROC_SELF_CGROUP).read_text().splitlines()
    except OSError:
        return []
    folders = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            base = Path(CGROUP_ROOT)
        elif "cpu" in controllers.split(","):
            base = Path(CGROUP_ROOT) / "cpu"
        else:
            continue
        parts = [p for p in path.strip().split("/") if p]
        folders += [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]
    return folders


def cgroup_cpu_quota() -> float | None:
    """The CPU quota of this process's cgroup in CPUs (quota / period, the smallest along the
    cgroup's ancestors): ``cpu.max`` (v2) or ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (v1);
    None where there is none (``max`` or −1) or it cannot be read."""
    quotas = []
    for folder in _cgroup_paths():
        try:
            if (folder / "cpu.max").is_file():
                quota, period = (folder / "cpu.max").read_text().split()[:2]
            elif (folder / "cpu.cfs_quota_us").is_file():
                quota = (folder / "cpu.cfs_quota_us").read_text().strip()
                period = (folder / "cpu.cfs_period_us").read_text().strip()
            else:
                continue
            if quota not in ("max", "-1") and float(period) > 0:
                quotas.append(float(quota) / float(period))
        except (OSError, ValueError):
            continue
    return min(quotas) if quotas else None


def _cpu_ticks(cpus: set[int] | list[int]) -> tuple[int, int]:
    """(busy, total) jiffies since boot of the CPUs ``cpus``, from /proc/stat's per-CPU lines."""
    wanted = {f"cpu{c}" for c in cpus}
    busy = total = 0
    with open(PROC_STAT) as stat:
        for line in stat:
            fields = line.split()
            if fields and fields[0] in wanted:
                values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
                busy += sum(values) - values[3] - values[4]
                total += sum(values)
    return busy, total


def other_cpu_load(window: float = 0.2) -> float | None:
    """How many of this process's allowed CPUs (``allowed_cpus``) other processes kept busy over
    the next ``window`` seconds (this process's own CPU time taken out), from /proc/stat; None
    where that cannot be read (not Linux)."""
    if not isinstance(window, (int, float)) or isinstance(window, bool) or not 0 < window <= 10:
        raise ValueError(f"window must be a number of seconds in (0, 10], got {window!r}")
    cpus = allowed_cpus()
    try:
        busy0, total0 = _cpu_ticks(cpus)
        own0 = time.process_time()
        time.sleep(window)
        busy1, total1 = _cpu_ticks(cpus)
        own1 = time.process_time()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    own = (own1 - own0) * os.sysconf("SC_CLK_TCK")
    return max(0.0, (busy1 - busy0 - own) / (total1 - total0) * len(cpus))


def cpu_threads() -> int | None:
    """The intra-op thread count for heavy CPU work, or None to keep torch's own.

    ``COURSEKIT_THREADS``: a positive int, ``torch`` (torch's default), or ``auto`` (the
    default when unset): the allowed CPUs (``allowed_cpus``) less those other processes are
    busy on right now (``other_cpu_load``), at most the cgroup's CPU quota
    (``cgroup_cpu_quota``) and torch's default, at least 1; torch's default where the load
    cannot be read.
    """
    value = os.environ.get("COURSEKIT_THREADS", "auto").strip().lower() or "auto"
    if value == "torch":
        return None
    if value == "auto":
        other = other_cpu_load()
        if other is None:
            return None
        quota = cgroup_cpu_quota()
        limit = min(_TORCH_THREADS, math.floor(quota) if quota is not None else _TORCH_THREADS)
        return max(1, min(limit, len(allowed_cpus()) - round(other)))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"COURSEKIT_THREADS must be a positive int, 'auto' or 'torch', got {value!r}")
    return int(value)


def _chosen_threads(device: torch.device | str | None) -> int | None:
    """The count CPU work on ``device`` should use, or None to leave torch's as it is: None on
    a GPU, and in ``auto`` mode when the caller has set a count of its own (torch's differs
    from its default and from the count ``apply_cpu_threads`` last set)."""
    device = torch.device(device) if device is not None else default_device()
    if device.type != "cpu":
        return None
    auto = os.environ.get("COURSEKIT_THREADS", "auto").strip().lower() in ("", "auto")
    if not auto:
        return cpu_threads()
    if torch.get_num_threads() not in (_TORCH_THREADS, *_APPLIED[-1:]):
        return None  # the caller's own choice
    return cpu_threads()


def apply_cpu_threads(device: torch.device | str | None = None) -> int:
    """Choose torch's process-wide intra-op threads for CPU work on ``device`` (default: the
    course's device) and leave them so: once per process, at set-up (``use_options``, the
    benchmarks' start), never inside a library call. The count is ``cpu_threads()``; a no-op on
    a GPU, with ``COURSEKIT_THREADS=torch``, where the load cannot be read, and in ``auto`` mode
    when the caller set a count (``torch.set_num_threads``). May take 0.2 s (a look at the
    load). Returns the count in use."""
    count = _chosen_threads(device)
    if count is not None and count != torch.get_num_threads():
        torch.set_num_threads(count)
        _APPLIED.append(count)
    return torch.get_num_threads()
