"""The prices Glue job: raw daily bars → ``tb_bvsp_refined`` and ``tb_bvsp_mensal``, written and registered.

A second job next to :mod:`bovespa_assets.glue.refine_job` rather than a dataset argument of it: the
two read different raw prefixes, write different tables and fail for different reasons, and with
two jobs a bad price file never holds back the portfolios (or the other way round); each keeps its
own run history in Glue. The Lambda handler routes ``raw/cotacoes/`` objects here. Arguments,
error handling and the local run are the refine job's (same helpers)::

    python -m bovespa_assets.glue.prices_job --sessions 2025-02-03 --lake_uri /path/lake \\
        --catalog local --catalog_path /path/catalog.sqlite

Steps:

1. List the raw price partitions and decide what to write: the requested sessions plus, per ticker,
   the 7 bars after each of them (their windows and 7-bar differences use it, so a session loaded
   late refreshes them too). A session is written whole, every ticker at once.
2. In Spark: read ALL raw bars (windows look back), compute ``tb_bvsp_refined`` (definitions in
   :mod:`bovespa_assets.refine.cotacoes`) and, from all of it, ``tb_bvsp_mensal``; keep the
   sessions to write, and every month of the years they fall in (the monthly table is replaced a
   year at a time, its first partition key).
3. Write both tables (one file per partition), register the partitions, write the run's manifest
   (``refined/_manifests/<JOB_RUN_ID>.json``, read by the sensors).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from datetime import date
from typing import Any

import pyarrow as pa

from bovespa_assets.glue.refine_job import (
    JobError,
    _now,
    build_spark,
    catalog_client,
    describe_error,
    parse_args,
    to_arrow,
)
from bovespa_assets.lake import RAW_COTACOES, Lake
from bovespa_assets.refine import catalog as glue_catalog
from bovespa_assets.refine.tables import BVSP_MENSAL, BVSP_REFINED, MANIFEST_PREFIX, MOVING_WINDOWS, month_key
from bovespa_assets.refine.writer import WriteResult, write_json, write_partitioned

LOOK_AHEAD = max(MOVING_WINDOWS)  # bars after a session whose figures use it (a 7-bar difference looks 7 back)


def raw_price_sessions(lake: Lake) -> dict[str, list[str]]:
    """Ticker → its sessions with a bar (ISO dates, ascending), from the raw partitions' keys."""
    found: dict[str, set[str]] = {}
    pattern = re.compile(rf"{re.escape(lake.path(RAW_COTACOES))}/ticker=([^/]+)/data_pregao=(\d{{4}}-\d{{2}}-\d{{2}})/")
    for info in lake.list_files(RAW_COTACOES):
        match = pattern.match(info.path)
        if match:
            found.setdefault(match.group(1), set()).add(match.group(2))
    return {ticker: sorted(days) for ticker, days in sorted(found.items())}


def sessions_to_write(available: dict[str, list[str]], requested: Sequence[str], raw_url: str) -> list[str]:
    """The requested sessions plus, per ticker, the LOOK_AHEAD bars after each one."""
    write: set[str] = set()
    for session in requested:
        hits = [ticker for ticker, days in available.items() if session in days]
        if not hits:
            tickers = ", ".join(available) or "none"
            raise JobError("reading raw", raw_url, f"no raw price partition for session {session} (tickers: {tickers})")
        for ticker in hits:
            days = available[ticker]
            at = days.index(session)
            write.update(days[at : at + 1 + LOOK_AHEAD])
    return sorted(write)


def compute(spark: Any, raw_url: str, write: Sequence[str]) -> tuple[pa.Table, pa.Table, list[str]]:
    """(refined rows of ``write``, monthly rows of the years of ``write``, those years); nothing is written."""
    from pyspark.sql import functions as F

    from bovespa_assets.refine.cotacoes import monthly_prices, read_raw_prices, refine_prices

    days = [date.fromisoformat(s) for s in write]
    years = sorted({d.year for d in days})
    history = None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="toPandas attempted Arrow optimization")
            history = refine_prices(read_raw_prices(spark, raw_url)).cache()
            refined = to_arrow(history.where(F.col("data_pregao").isin(days)).toPandas(), BVSP_REFINED)
            monthly = to_arrow(monthly_prices(history).where(F.col("ano").isin(years)).toPandas(), BVSP_MENSAL)
    except Exception as e:
        raise JobError("reading raw", raw_url, describe_error(e)) from e
    finally:
        if history is not None:
            with contextlib.suppress(Exception):
                history.unpersist()
    return refined, monthly, [str(y) for y in years]


def run(args: argparse.Namespace, spark_factory=build_spark) -> dict[str, Any]:
    started_at, t0 = _now(), time.perf_counter()
    lake = Lake(args.lake_uri, s3_endpoint_url=args.s3_endpoint_url)
    raw_url = lake.url(RAW_COTACOES)
    try:
        available = raw_price_sessions(lake)
    except OSError as e:
        raise JobError("reading raw", raw_url, str(e)) from e
    write = sessions_to_write(available, args.sessions, raw_url)
    spark = spark_factory()
    threshold = "32" if raw_url.startswith("s3://") else "1000000"
    spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.threshold", threshold)
    refined, monthly, years = compute(spark, raw_url, write)

    results: dict[str, WriteResult] = {}
    for table_def, table, replace in ((BVSP_REFINED, refined, write), (BVSP_MENSAL, monthly, years)):
        try:
            results[table_def.name] = write_partitioned(lake, table_def, table, replace, sort_by=["ticker"])
        except Exception as e:
            raise JobError("writing", lake.url(table_def.prefix), f"{type(e).__name__}: {e}") from e

    registered: dict[str, int] = {}
    try:
        glue = catalog_client(args)
        glue_catalog.ensure_database(glue, args.database)
        for table_def in (BVSP_REFINED, BVSP_MENSAL):
            result = results[table_def.name]
            glue_catalog.ensure_table(glue, args.database, table_def, result.location)
            registered[table_def.name] = glue_catalog.register_partitions(
                glue, args.database, table_def, result.location, result.partitions)
            glue_catalog.unregister_partitions(glue, args.database, table_def, result.deleted_partitions)
    except Exception as e:
        raise JobError("registering in catalog", f"{args.catalog}:{args.database}", f"{type(e).__name__}: {e}") from e

    monthly_keys: dict[str, dict[str, int]] = {}
    for values in results[BVSP_MENSAL.name].partitions:
        monthly_keys[month_key(values)] = {"rows": 1, "partitions": 1}
    manifest = {
        "job_run_id": args.job_run_id,
        "status": "succeeded",
        "database": args.database,
        "sessions_requested": list(args.sessions),
        "sessions_written": list(write),
        "tables": {
            BVSP_REFINED.name: {**_table_entry(results[BVSP_REFINED.name], registered),
                                "asset_partitions": results[BVSP_REFINED.name].sessions},
            BVSP_MENSAL.name: {**_table_entry(results[BVSP_MENSAL.name], registered),
                               "asset_partitions": monthly_keys},
        },
        "started_at": started_at,
        "finished_at": _now(),
    }
    manifest_key = f"{MANIFEST_PREFIX}/{args.job_run_id}.json"
    try:
        write_json(lake, manifest_key, manifest)
    except Exception as e:
        raise JobError("writing", lake.url(manifest_key), f"{type(e).__name__}: {e}") from e
    return {
        "status": "succeeded",
        "job_run_id": args.job_run_id,
        "sessions_requested": len(args.sessions),
        "sessions_written": len(write),
        "first_session": write[0],
        "last_session": write[-1],
        "rows": {BVSP_REFINED.name: refined.num_rows, BVSP_MENSAL.name: monthly.num_rows},
        "partitions_registered": registered,
        "manifest": lake.url(manifest_key),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _table_entry(result: WriteResult, registered: dict[str, int]) -> dict[str, Any]:
    return {"location": result.location, "sessions": result.sessions,
            "partitions_registered": registered[result.table.name], "files_deleted": result.deleted}


def main(argv: list[str] | None = None) -> int:
    import json

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    try:
        summary = run(args)
    except JobError as e:
        print(f"prices job failed: {e}", file=sys.stderr, flush=True)
        print(json.dumps({"status": "failed", "job_run_id": args.job_run_id, "stage": e.stage,
                          "input": e.target, "error": e.reason}), flush=True)
        return 1
    except Exception as e:
        traceback.print_exc(file=sys.stderr)
        print(f"prices job failed: {type(e).__name__}: {describe_error(e)}", file=sys.stderr, flush=True)
        print(json.dumps({"status": "failed", "job_run_id": args.job_run_id, "error": describe_error(e)}), flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
