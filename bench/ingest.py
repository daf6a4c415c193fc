"""Benchmark: backfill the whole bundled sample archive through Dagster (raw asset, local target).

Each repetition runs in a fresh process with a fresh BOVESPA_HOME (empty lake, new Dagster
instance), like `bovespa backfill` on a new machine. Prints medians over the repetitions:
  - backfill seconds: the Dagster runs themselves (planning, runs, events, Parquet writes);
  - per session: backfill seconds / sessions loaded;
  - command wall seconds: the whole `bovespa backfill` process, Python start-up and imports included.
Target (issue 2): the whole sample in under 15 s on a 2-core machine.

    .venv/bin/python bench/ingest.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_S = 15.0

CHILD = """
import json, time
from datetime import date
from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.runner import Runner
from bovespa_assets.settings import SAMPLE_ARCHIVE, Settings
import dataclasses
settings = dataclasses.replace(Settings.from_env(), offline=True, archive_uri=SAMPLE_ARCHIVE)
days = PortfolioArchive(SAMPLE_ARCHIVE).sessions("IBOV")
runner = Runner(settings, echo=lambda line: None)
started = time.perf_counter()
report = runner.backfill(["IBOV"], days[0], days[-1])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "loaded": len(report.of("loaded")), "failed": len(report.of("failed")),
                  "runs": len(runner.instance.get_runs()), "span": [str(days[0]), str(days[-1])]}))
"""


def one_repetition() -> dict:
    with tempfile.TemporaryDirectory(prefix="bovespa-bench-") as home:
        env = {**os.environ, "BOVESPA_HOME": home, "DAGSTER_HOME": os.path.join(home, "dagster")}
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = []
    for number in range(1, args.repeat + 1):
        result = one_repetition()
        results.append(result)
        print(f"run {number}/{args.repeat}: {result['loaded']} sessions in {result['runs']} Dagster run(s), "
              f"backfill {result['seconds']:.2f}s, command {result['wall']:.2f}s", flush=True)
    if any(r["failed"] for r in results):
        sys.exit("some sessions failed: see the runs above")
    sessions = results[0]["loaded"]
    backfill = statistics.median(r["seconds"] for r in results)
    wall = statistics.median(r["wall"] for r in results)
    print(f"\nbundled sample: {sessions} IBOV sessions ({results[0]['span'][0]} .. {results[0]['span'][1]}), "
          f"median of {len(results)} runs, {os.cpu_count()} CPU(s)")
    print(f"backfill through Dagster: {backfill:.2f} s  (per session {backfill / sessions * 1000:.0f} ms)")
    print(f"whole `bovespa backfill` command: {wall:.2f} s")
    print(f"target < {TARGET_S:.0f} s: {'met' if backfill < TARGET_S else 'MISSED'} "
          f"(backfill / target = {backfill / TARGET_S:.2f})")


if __name__ == "__main__":
    main()
