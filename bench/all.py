"""Every benchmark, one after the other, and one table of their figures and ratios against
the baselines each measured in the same run, with the machine's core count.

Each benchmark runs in a process of its own (as when run alone) with ``--summary``; its own
full report goes to ``bench-logs/<name>.log`` (printed too with ``--verbose``).

    .venv/bin/python -m bench.all [--backend sqlite|postgresql|both] [--only NAME ...] [--verbose]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.summary import Row, read

BENCHES = ("lookup", "ami", "imap", "mailing", "webhooks", "onec")


def run(name: str, backend: str, logs: Path, verbose: bool) -> tuple[list[Row], str | None]:
    """The benchmark's rows, and why it failed if it did."""
    with tempfile.TemporaryDirectory(prefix="hub_bench_all_") as tmp:
        summary = Path(tmp) / "summary.json"
        command = [sys.executable, "-m", f"bench.{name}", "--backend", backend, "--summary", str(summary)]
        log = logs / f"{name}.log"
        started = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if verbose:
                    print(f"  {name}: {line}", end="", flush=True)
            code = proc.wait()
        seconds = time.monotonic() - started
        rows = read(summary) if summary.exists() else []
    print(f"{name}: {len(rows)} figures in {seconds:.0f} s (exit {code}; {log})", flush=True)
    problem = None if code == 0 and rows else f"{name} exited with {code}" + ("" if rows else " and wrote no figures")
    return rows, problem


def print_table(rows: Sequence[Row]) -> None:
    print(
        f"\ncores: {os.cpu_count()}   python {platform.python_version()}   {platform.machine()}   "
        f"load1 {os.getloadavg()[0]:.1f}"
    )
    header = f"{'bench':<9}{'figure':<52}{'backend':<11}{'value':>12} {'unit':<12}{'of baseline':>12}  target"
    print(header)
    print("-" * (len(header) + 30))
    for row in rows:
        ratio = f"{row.ratio:.1%}" if row.ratio is not None else ""
        verdict = "" if row.met is None else ("PASS " if row.met else "FAIL ") + f"({row.target})"
        figure = row.figure if len(row.figure) <= 50 else row.figure[:49] + "…"
        value = f"{row.value:,.1f}" if row.value >= 100 else f"{row.value:.3g}"
        print(f"{row.bench:<9}{figure:<52}{row.backend:<11}{value:>12} {row.unit:<12}{ratio:>12}  {verdict}")
    print(
        "'of baseline': the figure as a share of the speed of the baseline the same benchmark measured in the same "
        "run (its log names it); for times, the baseline's time over the figure's"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="these benchmarks only")
    parser.add_argument("--logs", type=Path, default=Path("bench-logs"), help="where each benchmark's report goes")
    parser.add_argument("--verbose", action="store_true", help="print each benchmark's report as it runs")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    problems: list[str] = []
    for name in args.only or BENCHES:
        found, problem = run(name, args.backend, args.logs, args.verbose)
        rows.extend(found)
        if problem:
            problems.append(problem)
    print_table(rows)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    missed = [r for r in rows if r.met is False]
    failed = f", {len(problems)} benchmarks failed" if problems else ""
    print(f"\n{sum(1 for r in rows if r.met)} targets met, {len(missed)} missed{failed}")
    return 1 if problems or missed else 0


if __name__ == "__main__":
    sys.exit(main())
