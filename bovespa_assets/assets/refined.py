"""Refined tables as external assets: the Glue job writes them, sensors record what it wrote.

They share the raw assets' B3-session partitions, so each refined session is downstream of the
same raw session in the UI (lineage raw → refined). Dagster does not run the Glue job itself: the
S3 event → Lambda → Glue path does, on AWS as locally.
"""

from dagster import AssetCheckResult, AssetChecksDefinition, AssetSpec, PartitionsDefinition, asset_check

from ..observe import JOB_CHECK, refined_key
from ..refine.tables import BVSP_MENSAL, BVSP_REFINED, CARTEIRA, DATABASE, SETOR_DIARIO, TIPO_DIARIO, RefineJob
from ..resources import RefineResource
from .prices import raw_prices_key
from .raw import raw_portfolio_key


def build_refined_specs(indices: tuple[str, ...], partitions_def: PartitionsDefinition) -> list[AssetSpec]:
    carteira = AssetSpec(
        refined_key(CARTEIRA.name),
        deps=[raw_portfolio_key(index) for index in indices],
        partitions_def=partitions_def,
        group_name="refined",
        kinds={"glue", "spark", "parquet"},
        description=f"{CARTEIRA.description} Table {DATABASE}.{CARTEIRA.name}, partitioned by date and ticker.",
        metadata={"glue_table": f"{DATABASE}.{CARTEIRA.name}"},
    )
    aggregates = [
        AssetSpec(
            refined_key(table.name),
            deps=[carteira.key],
            partitions_def=partitions_def,
            group_name="refined",
            kinds={"glue", "spark", "parquet"},
            description=f"{table.description} Table {DATABASE}.{table.name}.",
            metadata={"glue_table": f"{DATABASE}.{table.name}"},
        )
        for table in (SETOR_DIARIO, TIPO_DIARIO)
    ]
    return [carteira, *aggregates]


def build_price_specs(
    symbols: tuple[str, ...], sessions: PartitionsDefinition, months: PartitionsDefinition
) -> list[AssetSpec]:
    """tb_bvsp_refined on the sessions (downstream of each raw prices asset), tb_bvsp_mensal on months."""
    refined = AssetSpec(
        refined_key(BVSP_REFINED.name),
        deps=[raw_prices_key(symbol) for symbol in symbols],
        partitions_def=sessions,
        group_name="refined",
        kinds={"glue", "spark", "parquet"},
        description=f"{BVSP_REFINED.description} Table {DATABASE}.{BVSP_REFINED.name}, partitioned by date and ticker.",
        metadata={"glue_table": f"{DATABASE}.{BVSP_REFINED.name}"},
    )
    monthly = AssetSpec(
        refined_key(BVSP_MENSAL.name),
        deps=[refined.key],
        partitions_def=months,
        group_name="refined",
        kinds={"glue", "spark", "parquet"},
        description=f"{BVSP_MENSAL.description} Table {DATABASE}.{BVSP_MENSAL.name}, partitioned by year and month.",
        metadata={"glue_table": f"{DATABASE}.{BVSP_MENSAL.name}"},
    )
    return [refined, monthly]


def build_job_check(job: RefineJob) -> AssetChecksDefinition:
    """``glue_job_succeeded`` on the job's first table: the latest run of that Glue job succeeded."""

    @asset_check(
        asset=refined_key(job.primary.name),
        name=JOB_CHECK,
        description=f"The latest run of the {job.dataset} refine Glue job succeeded "
        "(sensors also record this for every run).",
    )
    def _check(refine: RefineResource) -> AssetCheckResult:
        name = next(n for n, j in refine.job_names().items() if j == job)
        return latest_run_result(refine, name)

    return _check


def latest_run_result(refine: RefineResource, job_name: str) -> AssetCheckResult:
    runs = refine.jobs().get_job_runs(JobName=job_name, MaxResults=1).get("JobRuns", [])
    if not runs:
        return AssetCheckResult(passed=True, metadata={"state": "no run yet"})
    run = runs[0]
    return AssetCheckResult(
        passed=run.get("JobRunState") in ("SUCCEEDED", "RUNNING", "STARTING"),
        metadata={"glue_run_id": run["Id"], "state": run.get("JobRunState", ""),
                  "error": run.get("ErrorMessage") or "none"},
    )
