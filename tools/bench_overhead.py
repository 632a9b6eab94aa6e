"""What an API request costs around the model, at an older revision and now, in one run.

    VALENCE_DATA_DIR=... .venv/bin/python tools/bench_overhead.py BASE_REV [--rounds 2] \
        [-- bench-api options, e.g. --encoder 1 --runs 20 --seconds 15]

Checks BASE_REV out as a git worktree beside this one and runs `valence bench-api --json` from
each tree in turn, alternating (base, current, base, current, ...) so that a change in the
machine's load hits both alike. Both serve the same registered encoder from the same configured
database, each through its own code: its settings, middleware, authentication, throttling and
stored call. The model's own time (`encoder_in_process`, the same version and sentences with no
HTTP and no database) comes from this tree's report; what is left of the API's p50 is the
request's overhead. Prints one row per run and the median per tree.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def worktree(revision: str) -> Path:
    folder = Path(tempfile.gettempdir()) / f"valence-overhead-{revision}"
    if not (folder / "manage.py").is_file():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(folder), revision],
            cwd=HERE,
            check=True,
            capture_output=True,
        )
    return folder


def bench(tree: Path, options: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, str(tree / "manage.py"), "bench_api", "--json", *options],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench-api in {tree} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the revision to compare with (e.g. a commit before a change)")
    parser.add_argument("--rounds", type=int, default=2)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    arguments = parser.parse_args(argv[:split])
    arguments.options = argv[split + 1 :]  # bench-api's own options
    trees = {f"base {arguments.base}": worktree(arguments.base), "current": HERE}
    rows: dict[str, list[dict]] = {name: [] for name in trees}
    model_p50: list[float] = []
    for round_number in range(1, arguments.rounds + 1):
        for name, tree in trees.items():
            print(f"round {round_number}: {name} ...", file=sys.stderr)
            report = bench(tree, arguments.options)
            if "encoder_in_process" in report:
                model_p50.append(report["encoder_in_process"]["p50_ms"])
            rows[name].append(report)
    model = statistics.median(model_p50)
    first = next(iter(rows.values()))[0]
    print(f"configuration: {first['configuration']}")
    print(f"model alone (this tree, in process, no HTTP, no database): p50 {model:.2f} ms")
    print(f"{'tree':22} {'API p50':>8} {'API p95':>8} {'overhead':>9} {'req/s':>7} {'errors':>7}")
    for name, reports in rows.items():
        for report in reports:
            latency, load = report["encoder_latency"], report["encoder_throughput"]
            print(
                f"{name:22} {latency['p50_ms']:8.2f} {latency['p95_ms']:8.2f} "
                f"{latency['p50_ms'] - model:9.2f} {load['requests_per_s']:7.0f} "
                f"{latency['errors'] + load['errors']:7}"
            )
        p50 = statistics.median(r["encoder_latency"]["p50_ms"] for r in reports)
        rate = statistics.median(r["encoder_throughput"]["requests_per_s"] for r in reports)
        print(f"{name + ' (median)':22} {p50:8.2f} {'':8} {p50 - model:9.2f} {rate:7.0f}")


if __name__ == "__main__":
    main()
