"""Run an untrusted command in the strongest isolation this machine offers (a build tool of the
grader, ``tools/grade.py``).

**bubblewrap** (``bwrap``, Debian's ``bubblewrap``; `make sandbox` installs it) when it works
here: new user, mount, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``: no
network at all, only a loopback), every capability dropped, uid 65534 inside; the file system
is empty but for read-only binds of what a notebook needs — the system's ``/usr`` (and the
``/bin``, ``/lib*`` links to it), a few files of ``/etc`` (the loader's cache, fonts), the Python
environment (``sys.prefix``, ``sys.base_prefix``), the ``coursekit`` package's own folder, the
read-only folders the caller names (the model cache, the run's input) — one writable bind (the
run's output folder), a fresh ``/proc`` and ``/dev``, and size-limited tmpfs for ``/tmp``, the
home folder and the working folder. Nothing else of the host is there: not the repository,
not the answer key, not the other submissions, not the grades.

**process** otherwise (no bubblewrap, or it cannot make namespaces here): only a separate
process in its own empty folder with a scrubbed environment and home; it can read every file
the grader's user can read and reach the network. :func:`isolation` says which, and why.

Both: resource limits (``setrlimit``: address space, CPU time, file size, open files) and a
wall-clock limit after which the whole process group is killed.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

GIB = 1024**3
WORKDIR = "/sandbox"  # the tmpfs a sandboxed command starts in (no host folder lies under it)
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "localtime", "alternatives", "mime.types")
PASSWD = "root:x:0:0:root:/root:/bin/false\nstudent:x:65534:65534:student:/home/student:/bin/false\n"
GROUP = "root:x:0:\nstudent:x:65534:\n"


@dataclass(frozen=True)
class Limits:
    """``seconds``: wall clock for the whole run; ``memory``: bytes of address space per process;
    ``cpu_seconds``: CPU time per process; ``file_size``: bytes per written file; ``scratch``:
    bytes of each tmpfs (bubblewrap only)."""

    seconds: float = 900.0
    memory: int = 6 * GIB
    cpu_seconds: int = 3600
    file_size: int = 1 * GIB
    scratch: int = 1 * GIB

    def __post_init__(self) -> None:
        for name in ("seconds", "memory", "cpu_seconds", "file_size", "scratch"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class Result:
    """How a sandboxed command ended: ``returncode`` (None when it was killed at the wall-clock
    limit), ``timed_out``, ``seconds`` taken, and the tail of its output (``log``)."""

    returncode: int | None
    timed_out: bool
    seconds: float
    log: str = field(repr=False, default="")


def _probe_command() -> list[str]:
    return [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "true",
    ]


@lru_cache(maxsize=1)
def isolation() -> tuple[str, str]:
    """("bubblewrap", "") when bubblewrap can make its namespaces here, else ("process", why not)."""
    if shutil.which("bwrap") is None:
        return "process", "bubblewrap (bwrap) is not installed: `make sandbox` installs Debian's bubblewrap"
    probe = subprocess.run(_probe_command(), capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return "process", f"bubblewrap cannot make namespaces here: {probe.stderr.strip()[:200]}"
    return "bubblewrap", ""


def _system_binds() -> list[str]:
    """bwrap arguments for the system's programs and libraries, read-only."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def python_paths() -> list[Path]:
    """The folders a Python of this environment needs: the environment and its base interpreter."""
    found = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    return sorted(p for p in found if p != Path("/usr"))


def bwrap_command(
    command: list[str], read_only: list[Path], writable: Path, workdir: str, env: dict, limits: Limits
) -> list[str]:
    """The bwrap command line that runs ``command`` (see the module's docstring).

    ``read_only``: host folders bound read-only at the same path; ``writable``: the one host folder
    bound writable (same path); ``workdir``: the tmpfs folder it starts in; ``env``: its whole
    environment. ``/etc/passwd`` and ``/etc/group`` name only root and the student (uid 65534).
    """
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
    for folder in ("/tmp", str(env["HOME"]), workdir):  # first: the binds below may lie inside /tmp
        args += ["--size", str(limits.scratch), "--tmpfs", folder]
    args += _system_binds()
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        args += ["--ro-bind", str(_etc_file(name, text)), f"/etc/{name}"]
    for path in python_paths() + [Path(p) for p in read_only]:
        args += ["--ro-bind", str(path), str(path)]
    args += ["--bind", str(writable), str(writable), "--proc", "/proc", "--dev", "/dev"]
    args += ["--chdir", workdir, "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + ["--"] + command


@cache
def _etc_file(name: str, text: str) -> Path:
    """A world-readable file holding ``text`` (the sandbox's ``/etc/<name>``), made once per grader."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="sandbox-etc-"))
    folder.chmod(0o755)
    path = folder / name
    path.write_text(text)
    path.chmod(0o644)
    return path


def _limit(limits: Limits):
    """The preexec function that applies ``limits`` in the child (and starts a new session)."""

    def apply() -> None:
        os.setsid()
        for which, value in (
            (resource.RLIMIT_AS, limits.memory),
            (resource.RLIMIT_CPU, limits.cpu_seconds),
            (resource.RLIMIT_FSIZE, limits.file_size),
            (resource.RLIMIT_NOFILE, 1024),
            (resource.RLIMIT_CORE, 0),
        ):
            resource.setrlimit(which, (value, value))

    return apply


def run(
    command: list[str],
    *,
    read_only: list[Path],
    writable: Path,
    env: dict[str, str],
    limits: Limits,
    log: Path,
    mode: str | None = None,
) -> Result:
    """Run ``command`` isolated (``mode``: "bubblewrap" or "process"; default :func:`isolation`'s);
    its output goes to ``log`` (a host file outside every folder it can see).

    In "process" mode it starts in ``writable`` (the only folder it is meant to write) with
    ``env`` as its whole environment. The whole process group is killed at ``limits.seconds``.
    """
    mode = mode or isolation()[0]
    if mode not in ("bubblewrap", "process"):
        raise ValueError(f"mode must be 'bubblewrap' or 'process', got {mode!r}")
    if mode == "bubblewrap":
        argv, cwd, environment = bwrap_command(command, read_only, writable, WORKDIR, env, limits), None, None
    else:
        argv, cwd, environment = command, str(writable), env
    start = time.perf_counter()
    with open(log, "wb") as stream:
        child = subprocess.Popen(
            argv, cwd=cwd, env=environment, stdout=stream, stderr=subprocess.STDOUT, preexec_fn=_limit(limits)
        )
        try:
            returncode: int | None = child.wait(timeout=limits.seconds)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            returncode, timed_out = None, True
    tail = Path(log).read_bytes()[-4000:].decode("utf-8", "replace")
    return Result(returncode, timed_out, time.perf_counter() - start, tail)
