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
import sys
import time
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
    listed_sessions,
    parse_args,
    register,
    run_main,
    to_arrow,
    write_manifest,
)
from bovespa_assets.lake import RAW_COTACOES, Lake
from bovespa_assets.refine.tables import BVSP_MENSAL, BVSP_REFINED, MOVING_WINDOWS, month_key
from bovespa_assets.refine.writer import WriteResult, write_partitioned

LOOK_AHEAD = max(MOVING_WINDOWS)  # bars after a session whose figures use it (a 7-bar difference looks 7 back)


def raw_price_sessions(lake: Lake) -> dict[str, list[str]]:
    """Ticker → its sessions with a bar (ISO dates, ascending), from the raw partitions' keys."""
    return listed_sessions(lake, RAW_COTACOES, "ticker")


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

    try:
        registered, _ = register(catalog_client(args), args.database, results, (BVSP_REFINED, BVSP_MENSAL))
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
    manifest_key = write_manifest(lake, manifest)
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
    return run_main(argv, run, "prices job", parse_args)  # the same Glue-style arguments as the refine job


if __name__ == "__main__":
    sys.exit(main())
