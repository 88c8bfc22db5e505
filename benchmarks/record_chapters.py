"""Record the chapters' larger runs (the gpu profile by default) as package data, with provenance.

A chapter built on a CPU runs the quick profile; where that cannot decide a question, its "What
this run found" shows what a larger run gave, read from a record (``coursekit.findings.recorded``,
``coursekit.records``). Each chapter that needs one has a module ``benchmarks/records/<chapter>.py``
with ``record(profile, out, command)``: it computes with the same ``coursekit`` functions as the
chapter, at ``profile``, and writes its records (``coursekit.records.write_record``) into ``out``,
returning their paths. Records are refused once the code they were computed with changes, so
record after the code is final.

    python benchmarks/record_chapters.py                    # every chapter, gpu profile, into the package
    python benchmarks/record_chapters.py 04 06 --profile quick --out /tmp/records   # a quick try
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE_RECORDS = HERE.parent / "src" / "coursekit" / "records"


def chapter_modules(prefixes: list[str]) -> list[str]:
    """The record modules in ``benchmarks/records`` (one per chapter), in order; only those whose
    name starts with one of ``prefixes`` when any are given."""
    names = sorted(p.stem for p in (HERE / "records").glob("[0-9]*.py"))
    return [n for n in names if not prefixes or any(n.startswith(x) for x in prefixes)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter prefixes such as 04 or 03b (default: all)")
    parser.add_argument("--profile", default="gpu", choices=("quick", "gpu", "paper"))
    parser.add_argument("--out", default=PACKAGE_RECORDS, type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from coursekit.config import apply_cpu_threads

    apply_cpu_threads()  # once, for the whole run
    command = "python benchmarks/record_chapters.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    for name in chapter_modules(args.chapters):
        start = time.perf_counter()
        module = importlib.import_module(f"records.{name}")
        paths = module.record(args.profile, args.out, command)
        print(f"{name}: wrote {', '.join(p.name for p in paths)} in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
