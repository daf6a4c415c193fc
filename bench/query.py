"""Benchmark: latency of each view on the local target (DuckDB over the refined Parquet).

For the bundled sample (48 real IBOV sessions) and 250 SYNTHETIC sessions (bench/synthetic.py,
seeded from the real snapshots), builds a refined lake once (raw partitions, then the Glue script
on local Spark, as the refine path runs it), then prints medians of --repeat runs of:
- open, cold: a new engine reading the refined tables from the lake (one file per session and
  ticker) and creating the views from their Athena SQL;
- open, cached: the same with the tables read from the fingerprint cache ($BOVESPA_HOME/duckdb);
- each view: ``SELECT * FROM <view>``, the whole result fetched into pandas, on an open engine.

    .venv/bin/python bench/query.py [--repeat 3] [--sizes sample,250]
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
from pathlib import Path

from bovespa_assets.query.duckdb_engine import DuckDBQueryEngine
from bovespa_assets.query.views import load_views

BUILD = """
import sys
sys.path.insert(0, "bench")
from synthetic import synthetic_sessions, write_raw
from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.glue import refine_job
from bovespa_assets.lake import Lake
from bovespa_assets.settings import SAMPLE_ARCHIVE

lake_dir, catalog, size = sys.argv[1:4]
if size == "sample":
    archive = PortfolioArchive(SAMPLE_ARCHIVE)
    snapshots = [archive.find("IBOV", day) for day in archive.sessions("IBOV")]
else:
    snapshots = synthetic_sessions(int(size))
write_raw(Lake(lake_dir), snapshots)
sessions = ",".join(s.data_pregao.isoformat() for s in snapshots)
sys.exit(refine_job.main(["--sessions", sessions, "--lake_uri", lake_dir, "--catalog", "local",
                          "--catalog_path", catalog, "--JOB_RUN_ID", "jr_bench_query"]))
"""


def build_lake(root: Path, size: str) -> Path:
    lake = root / "lake"
    done = subprocess.run([sys.executable, "-c", BUILD, str(lake), str(root / "catalog.sqlite"), size],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"building the refined lake for {size} failed:\n{done.stderr[-3000:]}")
    return lake


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def measure(lake: Path, cache: Path, repeat: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"open, cold": [], "open, cached": []}
    rows: dict[str, int] = {}
    for _ in range(repeat):
        for label, cache_dir in (("open, cold", None), ("open, cached", cache)):
            seconds, engine = timed(lambda cache_dir=cache_dir: DuckDBQueryEngine(str(lake), cache_dir=cache_dir))
            samples[label].append(seconds)
            engine.close()
    engine = DuckDBQueryEngine(str(lake), cache_dir=cache)
    try:
        for view in load_views():
            for _ in range(repeat):
                seconds, frame = timed(lambda view=view: engine.query(f"SELECT * FROM {view.qualified_name}"))
                samples.setdefault(view.name, []).append(seconds)
                rows[view.name] = len(frame)
        tables = dict(engine.loaded)
    finally:
        engine.close()
    medians = {label: statistics.median(values) for label, values in samples.items()}
    return {"medians_s": medians, "rows": rows, "tables": tables}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="sample,250")
    args = parser.parse_args()
    results = {}
    for size in args.sizes.split(","):
        kind = "48 real sessions, the bundled sample" if size == "sample" else f"{size} SYNTHETIC sessions"
        with tempfile.TemporaryDirectory(prefix="bovespa-bench-query-") as tmp:
            started = time.perf_counter()
            lake = build_lake(Path(tmp), size)
            print(f"{size}: refined lake built in {time.perf_counter() - started:.0f}s", flush=True)
            result = measure(lake, Path(tmp) / "duckdb", args.repeat)
        results[size] = result
        files = result["tables"].get("tb_carteira_refined", 0)
        print(f"\n{kind} (tb_carteira_refined: {files:,} rows, one file each), "
              f"medians of {args.repeat} runs, {os.cpu_count()} CPU(s):")
        for label, seconds in result["medians_s"].items():
            count = f"  ({result['rows'][label]:,} rows)" if label in result["rows"] else ""
            print(f"  {label:<28} {seconds * 1000:9.1f} ms{count}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
