"""The Glue job: raw B3 portfolios → the refined tables, written to the lake and registered in the catalog.

The same script runs unchanged on AWS Glue 5.0 (Spark 3.5, Python 3.11; the package is shipped with
``--extra-py-files``) and locally on local Spark::

    python -m bovespa_assets.glue.refine_job --sessions 2025-02-03,2025-02-04 \\
        --lake_uri /path/lake --database workspace_db --catalog local --catalog_path /path/catalog.sqlite \\
        --JOB_RUN_ID jr_x

Arguments come Glue style (``--key value``); the ones Glue adds on its own (``--JOB_NAME``,
``--job-bookmark-option``, ``--TempDir`` …) are accepted and ignored.

Steps:

1. List the raw partitions (``raw/carteira/indice=*/data_pregao=*``) and decide what to write: the
   requested sessions plus, per index, the previous available session of each of them (its
   ``flag_saida`` depends on the session that follows it). A session is always written whole, all
   indices at once, because its partition files hold every index's rows.
2. In Spark: read ALL raw (the date calculations look back over the index's history), compute
   ``tb_carteira_refined`` (see :mod:`bovespa_assets.refine.carteira` for every definition),
   ``tb_setor_diario`` and ``tb_tipo_diario``, keep the sessions to write, collect them to the driver
   through Arrow with the contract's exact types.
3. Only when everything is computed: write the three tables (one Parquet file per partition,
   replacing the written sessions whole, see :mod:`bovespa_assets.refine.writer`), make sure the
   database and tables exist, register the written partitions (``batch_create_partition``).
4. Write the run's manifest, ``refined/_manifests/<JOB_RUN_ID>.json``, and print one JSON summary line.

A failure names the input and the reason on stderr and exits non-zero; when reading or computing
fails nothing at all is written. A session loaded out of order (older than sessions already refined)
changes the history of the sessions after it (previous session, moving average, count of sessions):
run the job over those sessions too to refresh them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from bovespa_assets.lake import RAW_CARTEIRA, Lake, partition_dir
from bovespa_assets.refine import catalog as glue_catalog
from bovespa_assets.refine import tables
from bovespa_assets.refine.tables import CARTEIRA, SETOR_DIARIO, TIPO_DIARIO, TableDef
from bovespa_assets.refine.writer import WriteResult, arrow_schema, write_json, write_partitioned

SPARK_STATIC_CONF = {  # only take effect when this process creates the session (local runs, not Glue)
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # A short job on a small machine: the C1 compiler alone and the serial GC start faster than the
    # defaults (measured locally: one session 25-31 s -> 14-20 s end to end, under load).
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
}
SPARK_RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "2",  # ~100 rows per session: a couple of tasks is plenty
    "spark.sql.adaptive.enabled": "false",  # re-planning tiny stages costs more than it saves
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
}
SORT_WITHIN_PARTITION = {
    CARTEIRA.name: ["indice"],
    SETOR_DIARIO.name: ["indice", "setor"],
    TIPO_DIARIO.name: ["indice", "tipo"],
}
REQUIRED_NOT_NULL = ("acao", "tipo_publicado", "participacao_pct", "qtd_teorica")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,255}$")


class JobError(Exception):
    """What failed, on which input, and why: the message the job prints on stderr."""

    def __init__(self, stage: str, target: str, reason: str):
        self.stage, self.target, self.reason = stage, target, reason
        super().__init__(f"{stage} {target}: {reason}")


# ----------------------------------------------------------------------------------------- arguments


def _sessions(text: str) -> list[str]:
    sessions = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        try:
            sessions.append(date.fromisoformat(item).isoformat())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not a session date (YYYY-MM-DD)") from None
    if not sessions:
        raise argparse.ArgumentTypeError("no session given")
    return sorted(set(sessions))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="refine_job", description="Refine raw B3 portfolios into the refined tables.", allow_abbrev=False
    )
    parser.add_argument("--sessions", required=True, type=_sessions, help="comma-separated sessions, YYYY-MM-DD")
    parser.add_argument("--lake_uri", required=True, help="lake root: a folder or s3://bucket[/prefix]")
    parser.add_argument("--database", default=tables.DATABASE)
    parser.add_argument("--catalog", choices=("glue", "local"), default="glue")
    parser.add_argument("--catalog_path", default=None, help="the local catalog's file (--catalog local)")
    parser.add_argument("--s3_endpoint_url", default=None, help="S3 endpoint override for the lake (moto, MinIO)")
    parser.add_argument("--JOB_RUN_ID", dest="job_run_id", default=None)
    args, _unknown = parser.parse_known_args(list(argv))  # Glue adds --JOB_NAME, --TempDir, ... of its own
    if args.catalog == "local" and not args.catalog_path:
        parser.error("--catalog_path is required with --catalog local")
    if args.job_run_id is None:
        args.job_run_id = f"jr_local_{datetime.now(UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    if not _RUN_ID.match(args.job_run_id):
        parser.error(f"--JOB_RUN_ID {args.job_run_id!r}: letters, digits and _ . : - only")
    return args


# ------------------------------------------------------------------------------------------- helpers


def build_spark():
    """The process's one SparkSession (created on first call, reused after), configured for this job."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("bovespa-refine")
    for key, value in SPARK_STATIC_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    for key, value in SPARK_RUNTIME_CONF.items():
        spark.conf.set(key, value)
    if spark.sparkContext.master.startswith("local"):
        # Locally the job's own error line carries the root cause; Spark's duplicate stack traces
        # would only bury it. On Glue the log level is Glue's to decide.
        spark.sparkContext.setLogLevel("FATAL")
    return spark


def catalog_client(args: argparse.Namespace) -> Any:
    """boto3's Glue client on AWS, or the local catalog with the same calls."""
    if args.catalog == "local":
        from bovespa_assets.local.glue_catalog import LocalGlueCatalog

        return LocalGlueCatalog(args.catalog_path)
    import boto3

    return boto3.client("glue")


_FILE_IN_MESSAGE = re.compile(r"(?:file:|s3[an]?://|hdfs://)\S+")
_JAVA_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error): ")


def describe_error(exc: BaseException) -> str:
    """One line from a Spark/Py4J error: the deepest cause that names a file (else the deepest cause)."""
    messages: list[str] = []
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause = java
            while cause is not None:
                messages.append(str(cause.toString()))
                cause = cause.getCause()
        except Exception:  # the JVM is gone: fall back to Python's text
            messages = []
    if not messages:
        messages = [str(exc) or type(exc).__name__]
    first_lines = [next((ln.strip() for ln in m.splitlines() if ln.strip() not in ("", ":")), m) for m in messages]
    chosen = next((m for m in reversed(first_lines) if _FILE_IN_MESSAGE.search(m)), first_lines[-1])
    chosen = _JAVA_CLASS_PREFIX.sub("", chosen)
    return re.sub(r"file:(?://)?(/[^\s]*)", r"\1", chosen)  # file:///tmp/x → /tmp/x


def listed_sessions(lake: Lake, prefix: str, key: str) -> dict[str, list[str]]:
    """``key`` value (index, ticker) → its sessions with a raw partition (ISO dates, ascending), from the keys
    ``<prefix>/<key>=<value>/data_pregao=YYYY-MM-DD/…`` under ``prefix``."""
    found: dict[str, set[str]] = {}
    pattern = re.compile(rf"{re.escape(lake.path(prefix))}/{key}=([^/]+)/data_pregao=(\d{{4}}-\d{{2}}-\d{{2}})/")
    for info in lake.list_files(prefix):
        match = pattern.match(info.path)
        if match:
            found.setdefault(match.group(1), set()).add(match.group(2))
    return {value: sorted(days) for value, days in sorted(found.items())}


def raw_sessions(lake: Lake) -> dict[str, list[str]]:
    """Index → its available sessions (ISO dates, ascending), from the raw partitions' keys."""
    return listed_sessions(lake, RAW_CARTEIRA, "indice")


def sessions_to_write(available: dict[str, list[str]], requested: Sequence[str], raw_url: str) -> list[str]:
    """The requested sessions plus each one's previous available session, per index."""
    write: set[str] = set()
    for session in requested:
        hits = [index for index, days in available.items() if session in days]
        if not hits:
            indices = ", ".join(available) or "none"
            reason = f"no raw partition for session {session} (indices in raw: {indices})"
            raise JobError("reading raw", raw_url, reason)
        write.add(session)
        for index in hits:
            days = available[index]
            position = days.index(session)
            if position > 0:
                write.add(days[position - 1])
    return sorted(write)


def to_arrow(pdf: Any, table_def: TableDef) -> pa.Table:
    """pandas from Spark → Arrow with the contract's exact types (date32, int64, int32, bool ...)."""
    return pa.Table.from_pandas(pdf, schema=arrow_schema(table_def), preserve_index=False, safe=True)


def compute(spark: Any, raw_url: str, lake: Lake, write: Sequence[str]) -> dict[str, pa.Table]:
    """All three tables for the sessions in ``write``, on the driver; nothing is written here."""
    from pyspark.sql import functions as F

    from bovespa_assets.refine.carteira import read_raw, refine_carteira, setor_diario, tipo_diario

    days = [date.fromisoformat(s) for s in write]
    refined = None
    try:
        with warnings.catch_warnings():
            # pyspark repeats a failed Arrow collect as a long warning; the error is reported once, below.
            warnings.filterwarnings("ignore", message="toPandas attempted Arrow optimization")
            raw = read_raw(spark, raw_url)
            refined = refine_carteira(raw).where(F.col("data_pregao").isin(days)).cache()
            result = {
                CARTEIRA.name: to_arrow(refined.toPandas(), CARTEIRA),
                SETOR_DIARIO.name: to_arrow(setor_diario(refined).toPandas(), SETOR_DIARIO),
                TIPO_DIARIO.name: to_arrow(tipo_diario(refined).toPandas(), TIPO_DIARIO),
            }
    except JobError:
        raise
    except Exception as e:
        raise JobError("reading raw", raw_url, describe_error(e)) from e
    finally:
        if refined is not None:
            with contextlib.suppress(Exception):  # best effort: the session may already be failing
                refined.unpersist()
    _check_rows(result[CARTEIRA.name], lake)
    return result


def _check_rows(carteira: pa.Table, lake: Lake) -> None:
    """Raw rows the refined table cannot stand on: required values missing, a ticker twice in a session."""
    pdf = carteira.select(["indice", "data_pregao", "codigo", *REQUIRED_NOT_NULL]).to_pandas()
    missing = pdf[pdf[["codigo", *REQUIRED_NOT_NULL]].isna().any(axis=1)]
    duplicated = pdf[pdf.duplicated(["indice", "data_pregao", "codigo"], keep=False)]
    for bad, reason in ((missing, "rows with no ticker, name, type, weight or quantity"),
                        (duplicated, "the same ticker more than once")):
        if len(bad):
            first = bad.iloc[0]
            where = lake.url(partition_dir(RAW_CARTEIRA, first["indice"], first["data_pregao"]))
            raise JobError("reading raw", where, f"{reason} ({len(bad)} rows, e.g. {first['codigo']!r})")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def register(
    glue: Any, database: str, results: dict[str, WriteResult], table_defs: Sequence[TableDef] = tables.TABLES
) -> tuple[dict[str, int], dict[str, int]]:
    """Make sure the database and tables exist, register the written partitions, drop the emptied ones.

    Returns (registered, unregistered) partition counts per table.
    """
    registered: dict[str, int] = {}
    unregistered: dict[str, int] = {}
    glue_catalog.ensure_database(glue, database)
    for table_def in table_defs:
        result = results.get(table_def.name)
        if result is None:
            continue
        glue_catalog.ensure_table(glue, database, table_def, result.location)
        registered[table_def.name] = glue_catalog.register_partitions(
            glue, database, table_def, result.location, result.partitions
        )
        unregistered[table_def.name] = glue_catalog.unregister_partitions(
            glue, database, table_def, result.deleted_partitions
        )
    return registered, unregistered


def build_manifest(
    job_run_id: str, database: str, requested: Sequence[str], write: Sequence[str], results: dict[str, WriteResult],
    registered: dict[str, int], unregistered: dict[str, int], started_at: str,
) -> dict[str, Any]:
    """What the run wrote, per table and session: the sensors turn it into Dagster events."""
    return {
        "job_run_id": job_run_id,
        "status": "succeeded",
        "database": database,
        "sessions_requested": list(requested),
        "sessions_written": list(write),
        "tables": {
            name: {
                "location": result.location,
                "sessions": result.sessions,
                "partitions_registered": registered[name],
                "partitions_unregistered": unregistered[name],
                "files_deleted": result.deleted,
            }
            for name, result in results.items()
        },
        "started_at": started_at,
        "finished_at": _now(),
    }


def write_manifest(lake: Lake, manifest: dict[str, Any]) -> str:
    """``refined/_manifests/<job run id>.json``; returns its key."""
    key = f"{tables.MANIFEST_PREFIX}/{manifest['job_run_id']}.json"
    try:
        write_json(lake, key, manifest)
    except Exception as e:
        raise JobError("writing", lake.url(key), f"{type(e).__name__}: {e}") from e
    return key


# ------------------------------------------------------------------------------------------------ run


def run(args: argparse.Namespace, spark_factory=build_spark) -> dict[str, Any]:
    started_at, t0 = _now(), time.perf_counter()
    lake = Lake(args.lake_uri, s3_endpoint_url=args.s3_endpoint_url)
    raw_url = lake.url(RAW_CARTEIRA)
    try:
        available = raw_sessions(lake)
    except OSError as e:
        raise JobError("reading raw", raw_url, str(e)) from e
    write = sessions_to_write(available, args.sessions, raw_url)
    timings = {"list_raw": time.perf_counter() - t0}

    mark = time.perf_counter()
    spark = spark_factory()
    timings["spark_session"] = time.perf_counter() - mark
    # A local lake lists fast on the driver, where Spark's parallel listing job only costs time; on S3
    # (thousands of partition folders) Spark's default parallel listing is the better choice.
    threshold = "32" if raw_url.startswith("s3://") else "1000000"
    spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.threshold", threshold)

    mark = time.perf_counter()
    computed = compute(spark, raw_url, lake, write)
    timings["compute"] = time.perf_counter() - mark

    mark = time.perf_counter()
    results: dict[str, WriteResult] = {}
    for table_def in tables.TABLES:
        location = lake.url(table_def.prefix)
        try:
            results[table_def.name] = write_partitioned(
                lake, table_def, computed[table_def.name], write, sort_by=SORT_WITHIN_PARTITION[table_def.name]
            )
        except Exception as e:
            raise JobError("writing", location, f"{type(e).__name__}: {e}") from e
    timings["write"] = time.perf_counter() - mark

    mark = time.perf_counter()
    try:
        registered, unregistered = register(catalog_client(args), args.database, results)
    except JobError:
        raise
    except Exception as e:
        raise JobError("registering in catalog", f"{args.catalog}:{args.database}", f"{type(e).__name__}: {e}") from e

    timings["catalog"] = time.perf_counter() - mark

    manifest = build_manifest(args.job_run_id, args.database, args.sessions, write, results, registered, unregistered,
                              started_at)
    manifest_key = write_manifest(lake, manifest)
    return {
        "status": "succeeded",
        "job_run_id": args.job_run_id,
        "sessions_requested": manifest["sessions_requested"],
        "sessions_written": manifest["sessions_written"],
        "rows": {name: sum(s["rows"] for s in r.sessions.values()) for name, r in results.items()},
        "partitions": {name: len(r.partitions) for name, r in results.items()},
        "partitions_registered": registered,
        "files_deleted": sum(len(r.deleted) for r in results.values()),
        "manifest": lake.url(manifest_key),
        "seconds": round(time.perf_counter() - t0, 3),
        "timings": {step: round(seconds, 3) for step, seconds in timings.items()},
    }


def run_main(
    argv: list[str] | None,
    run_job: Callable[[argparse.Namespace], dict[str, Any]],
    label: str,
    parse: Callable[[Sequence[str]], argparse.Namespace] = parse_args,
) -> int:
    """A Glue script's entry point: parse the arguments, run, print one JSON summary line; on failure the
    reason on stderr (the traceback too for a bug rather than bad input) and a non-zero exit."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv)
    except SystemExit as e:  # argparse has already printed the usage and the reason
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    try:
        summary = run_job(args)
    except JobError as e:
        print(f"{label} failed: {e}", file=sys.stderr, flush=True)
        print(json.dumps({"status": "failed", "job_run_id": args.job_run_id, "stage": e.stage,
                          "input": e.target, "error": e.reason}), flush=True)
        return 1
    except Exception as e:  # a bug, not bad input: the traceback, one clear last line, a non-zero exit
        traceback.print_exc(file=sys.stderr)
        print(f"{label} failed: {type(e).__name__}: {describe_error(e)}", file=sys.stderr, flush=True)
        print(json.dumps({"status": "failed", "job_run_id": args.job_run_id, "error": describe_error(e)}), flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(argv, run, "refine job")


if __name__ == "__main__":
    sys.exit(main())
