"""Benchmark: end-to-end refine time, from raw written to refined observed in Dagster (local target).

For N = 1 and 20 real sessions (the bundled archive) and 250 SYNTHETIC sessions (bench/synthetic.py,
seeded from the real snapshots), each repetition starts from a fresh BOVESPA_HOME holding only
the raw partitions, then times: S3-shaped events → Lambda handler → Glue job run (the Glue script
on local Spark, in its own process, as the local job service runs it) → catalog registration →
materializations and observations recorded in the Dagster instance. Prints medians.
Targets (issue 3): one session in at most 25 s; 250 sessions in at most 3x the one-session time.

    .venv/bin/python bench/refine.py [--repeat 3] [--sizes 1,20,250]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ONE_SESSION_TARGET_S = 25.0
SCALE_TARGET = 3.0

CHILD = """
import dataclasses, json, sys, time
sys.path.insert(0, "bench")
from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.lake import Lake
from bovespa_assets.runner import Runner
from bovespa_assets.settings import SAMPLE_ARCHIVE, Settings
from synthetic import synthetic_sessions, write_raw

size = int(sys.argv[1])
settings = dataclasses.replace(Settings.from_env(), offline=True)
lake = Lake(settings.lake_uri)
if size <= 20:
    archive = PortfolioArchive(SAMPLE_ARCHIVE)
    days = [d for d in archive.sessions("IBOV") if d.isoformat() >= "2025-02-03"][:size]
    snapshots = [archive.find("IBOV", d) for d in days]
    kind = "real"
else:
    snapshots = synthetic_sessions(size)
    kind = "SYNTHETIC"
write_raw(lake, snapshots)
runner = Runner(settings, echo=lambda line: None)
started = time.perf_counter()
runs = runner.refine([s.data_pregao for s in snapshots])
seconds = time.perf_counter() - started
states = [r.get("JobRunState") for r in runs]
print(json.dumps({"seconds": seconds, "runs": len(runs), "states": states, "kind": kind,
                  "job_seconds": sum(r.get("ExecutionTime") or 0 for r in runs)}))
"""


def one(size: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bovespa-bench-") as home:
        env = {**os.environ, "BOVESPA_HOME": home, "DAGSTER_HOME": os.path.join(home, "dagster")}
        done = subprocess.run([sys.executable, "-c", CHILD, str(size)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"benchmark run for {size} session(s) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["states"] != ["SUCCEEDED"] * result["runs"] or not result["runs"]:
        sys.exit(f"refine job runs did not all succeed: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="1,20,250")
    args = parser.parse_args()
    medians = {}
    for size in (int(s) for s in args.sizes.split(",")):
        results = []
        for number in range(1, args.repeat + 1):
            result = one(size)
            results.append(result)
            print(f"{size:>4} {result['kind']} session(s), run {number}/{args.repeat}: {result['seconds']:.1f}s "
                  f"end to end ({result['runs']} Glue run(s), job {result['job_seconds']}s)", flush=True)
        medians[size] = statistics.median(r["seconds"] for r in results)
    print(f"\nmedians of {args.repeat} runs, {os.cpu_count()} CPU(s), raw written → refined observed:")
    for size, seconds in medians.items():
        print(f"  {size:>4} session(s): {seconds:6.1f} s   ({seconds / size:.2f} s per session)")
    if 1 in medians:
        one_s = medians[1]
        print(f"one session: {one_s:.1f} s, target <= {ONE_SESSION_TARGET_S:.0f} s: "
              f"{'met' if one_s <= ONE_SESSION_TARGET_S else 'MISSED'}")
        if 250 in medians:
            ratio = medians[250] / one_s
            print(f"250 / 1 sessions: {ratio:.2f}x, target <= {SCALE_TARGET:.0f}x: "
                  f"{'met' if ratio <= SCALE_TARGET else 'MISSED'}")
    print(json.dumps({"medians_s": medians}))


if __name__ == "__main__":
    main()
