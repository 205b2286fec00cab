"""Run every benchmark (or those named) against the local stack and write ``bench/RESULTS.md``.

Each ``bench/bench_<area>.py`` exposes ``run(settings) -> str``, which measures its area and
compares it, in the same run, with the floor or the alternative it is judged against; the
harness adds the date, the machine and the command. Servers this run had to start are stopped
at the end.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from featurestore.config import load_settings
from featurestore.stack import Stack

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _demote(markdown: str) -> str:
    """Push a section's own headings below the harness's ``## name``."""
    lines = markdown.splitlines()
    return "\n".join("##" + line if line.startswith("#") else line for line in lines)


def _previous_sections(path: Path) -> dict[str, str]:
    """The sections of an earlier results file, by benchmark name, to keep those not re-run."""
    if not path.exists():
        return {}
    sections: dict[str, str] = {}
    for chunk in path.read_text().split("\n## ")[1:]:
        name = chunk.split("\n", 1)[0].strip()
        if name in available():
            sections[name] = f"## {chunk.rstrip()}\n"
    return sections


def available() -> list[str]:
    """Names of the benchmarks there are (``bench_<name>.py``)."""
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def _module(name: str) -> Any:
    """The benchmark's module (``bench_<name>.py``), imported once."""
    return importlib.import_module(f"bench.bench_{name}")


def _own_stack(name: str) -> bool:
    """Whether the benchmark brings its own stack (``OWN_STACK = True`` in its module)."""
    try:
        return bool(getattr(_module(name), "OWN_STACK", False))
    except ImportError:  # reported when it runs
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the results file."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {available()})"
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(available())}")

    settings = load_settings()
    stack = Stack(settings)
    # Sections on a stack of their own (soak, chaos) would only share the machine with it.
    shared = [n for n in names if not _own_stack(n)]
    started: list[str] = []  # filled as each server launches: a later one failing stops them
    sections = _previous_sections(args.out)
    failed: list[str] = []
    try:
        if shared:
            stack.up(on_launch=started.append)
        for name in names:
            print(f"[bench] {name} ...", flush=True)
            began = time.monotonic()
            try:
                body = _module(name).run(settings)
            except Exception:  # a failed benchmark is reported, the others still run
                failed.append(name)
                body = f"FAILED:\n\n```\n{traceback.format_exc()}```\n"
            took = time.monotonic() - began
            stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {took:.1f} s"
            sections[name] = f"## {name}\n\n_measured {stamp}_\n\n{_demote(body.strip())}\n"
            print(f"[bench] {name} done in {took:.1f} s", flush=True)
    finally:
        stack.down(started)

    header = (
        "# Benchmark results\n\n"
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- machine: {_machine()}\n"
        f"- command: `make bench` (`python -m bench {' '.join(argv or sys.argv[1:])}`)\n"
        "- servers: the local stack (`featurestore stack up`), all on loopback\n\n"
        "Each section was measured in one run (its own date is under its title; `make bench` "
        "refreshes them all) and compares the store with its floor or its alternative side by "
        "side, on the same data.\n"
    )
    ordered = [sections[name] for name in sorted(sections)]
    args.out.write_text(header + "\n" + "\n".join(ordered))
    print(f"[bench] wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
