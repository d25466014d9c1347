"""Run the benchmarks: `python -m benchmarks [--quick] [--only 1,3] [--keys N] [--rebuild]`.

Prints a results table and writes `benchmarks/results.md` (figures as measured, with the
machine's core count, Python version and date). Nothing here asserts: the targets are
reported as ok / MISS next to the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from importlib import metadata

from benchmarks import (
    bench_auth_levels,
    bench_ext_authz,
    bench_garbage,
    bench_gc,
    bench_governance,
    bench_inprocess,
    bench_limits,
    bench_metrics,
    bench_one_port,
    bench_relations,
    bench_scale,
    bench_throughput,
    bench_upstream,
    bench_usage,
    bench_workers,
    loadgen,
)
from benchmarks.common import BENCH_DIR, REPO_ROOT, Result, log

BENCHMARKS = {
    "1": bench_inprocess,
    "2": bench_throughput,
    "3": bench_scale,
    "4": bench_garbage,
    "5": bench_relations,
    "6": bench_gc,
    "7": bench_one_port,
    "8": bench_governance,
    "10": bench_ext_authz,
    "11": bench_upstream,
    "12": bench_workers,
    "13": bench_auth_levels,
    "16": bench_limits,
    "14": bench_metrics,
    "18": bench_usage,
}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _wrk_version() -> str:
    path = loadgen.wrk_path()
    if not path:
        return "not installed (Python load generator used)"
    try:
        out = subprocess.run([path, "-v"], capture_output=True, text=True, timeout=5)
        return (out.stdout or out.stderr).split("[")[0].strip() or "installed"
    except (OSError, subprocess.SubprocessError):
        return "installed"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return f"{rev}{' + uncommitted changes in src/' if dirty else ''}" if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> list[tuple[str, str]]:
    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("os.cpu_count()", str(os.cpu_count())),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("SQLite", sqlite3.sqlite_version),
        ("scopegate revision", _git_revision()),
        (
            "grpcio / uvicorn / SQLAlchemy / protobuf",
            " / ".join(_version(p) for p in ("grpcio", "uvicorn", "sqlalchemy", "protobuf")),
        ),
        ("HTTP load generator", _wrk_version()),
    ]


def table(results: list[Result]) -> list[str]:
    lines = [
        "| benchmark | metric | value | unit | target | verdict | note |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.benchmark} | {r.metric} | {r.shown()} | {r.unit} | {r.target} | "
            f"{r.verdict()} | {r.note} |"
        )
    return lines


def print_table(results: list[Result]) -> None:
    headers = ("benchmark", "metric", "value", "unit", "target", "verdict")
    rows = [(r.benchmark, r.metric, r.shown(), r.unit, r.target, r.verdict()) for r in results]
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
        for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print(
            "  ".join(
                (c.rjust(w) if i == 2 else c.ljust(w))
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def write_markdown(path, env, results, sections, elapsed, options) -> None:
    lines = ["# scopegate benchmark results", ""]
    lines.append(
        "Written by `python -m benchmarks`"
        + (" (`--quick`)" if options.quick else "")
        + "; see `benchmarks/README.md` for what each benchmark does. "
        "Figures as measured in one run, on this machine:"
    )
    lines.append("")
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in env]
    lines.append(f"| whole run | {elapsed:.0f} s |")
    lines.append("")
    lines.append("## Summary")
    lines.append("")
    lines += table(results)
    lines.append("")
    for title, details, seconds in sections:
        lines.append(f"## {title}")
        lines.append("")
        lines.append(f"_{seconds:.0f} s._")
        lines.append("")
        lines += details
        lines.append("")
    path.write_text("\n".join(lines).rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default="", help="comma-separated numbers, e.g. 1,3")
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    parser.add_argument(
        "--keys",
        type=int,
        default=1_000_000,
        help="keys in the large database of benchmark 3 (default 1000000)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the cached key databases of benchmark 3"
    )
    parser.add_argument(
        "--output",
        default=str(BENCH_DIR / "results.md"),
        help="where to write the markdown results ('-' for nowhere)",
    )
    options = parser.parse_args(argv)
    options.keys = max(2_000, min(options.keys, 2_000_000))
    chosen = [c.strip() for c in options.only.split(",") if c.strip()] or list(BENCHMARKS)
    unknown = [c for c in chosen if c not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    env = environment()
    for key, value in env:
        log(f"{key}: {value}")
    started = time.monotonic()
    results: list[Result] = []
    sections = []
    for number in chosen:
        module = BENCHMARKS[number]
        t0 = time.monotonic()
        try:
            rows, details = module.run(options)
        except Exception as exc:  # report it and go on with the others
            traceback.print_exc()
            rows = [Result(module.NAME, "error", type(exc).__name__, "", "", False, str(exc)[:200])]
            details = ["```", traceback.format_exc()[-3000:], "```"]
        seconds = time.monotonic() - t0
        log(f"{module.NAME}: done in {seconds:.0f}s")
        results += rows
        sections.append((module.NAME, details, seconds))
    elapsed = time.monotonic() - started

    print()
    print_table(results)
    print(
        f"\n{len(results)} figures in {elapsed:.0f}s; "
        f"{sum(r.passed is False for r in results)} missed their target."
    )
    if options.output != "-":
        from pathlib import Path

        path = Path(options.output)
        write_markdown(path, env, results, sections, elapsed, options)
        print(f"written: {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
