"""Refined tables as external assets: the Glue job writes them, sensors record what it wrote.

They share the raw assets' B3-session partitions, so each refined session is downstream of the
same raw session in the UI (lineage raw → refined). Dagster does not run the Glue job itself: the
S3 event → Lambda → Glue path does, on AWS as locally.
"""

from dagster import AssetCheckResult, AssetSpec, PartitionsDefinition, asset_check

from ..observe import JOB_CHECK, refined_key
from ..refine.tables import CARTEIRA, DATABASE, SETOR_DIARIO, TIPO_DIARIO
from ..resources import RefineResource
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


@asset_check(
    asset=refined_key(CARTEIRA.name),
    name=JOB_CHECK,
    description="The latest run of the refine Glue job succeeded (sensors also record this for every run).",
)
def glue_job_succeeded(refine: RefineResource) -> AssetCheckResult:
    runs = refine.jobs().get_job_runs(JobName=refine.job_name, MaxResults=1).get("JobRuns", [])
    if not runs:
        return AssetCheckResult(passed=True, metadata={"state": "no run yet"})
    run = runs[0]
    return AssetCheckResult(
        passed=run.get("JobRunState") in ("SUCCEEDED", "RUNNING", "STARTING"),
        metadata={"glue_run_id": run["Id"], "state": run.get("JobRunState", ""),
                  "error": run.get("ErrorMessage") or "none"},
    )
