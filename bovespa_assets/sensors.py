"""Sensors: deliver raw-object events to the Lambda handler (local target), and record what the
Glue job runs wrote (materializations, check results) and what the catalog registered (observations).

Cursors live in Dagster (they survive restarts); runs already reported to the instance, by a
sensor or by the CLI, are skipped, so nothing is reported twice.
"""

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from .lake import RAW_CARTEIRA, RAW_COTACOES
from .local.raw_events import FileCursor, deliver
from .observe import RunCursor, finished_runs, unobserved_catalog_events, unreported_run_events
from .resources import LakeResource, RefineResource
from .settings import Settings


def build_raw_objects_sensor(sessions_per_run: int) -> SensorDefinition:
    """Local stand-in for the S3 → Lambda notification: new raw files go to the same handler."""

    @sensor(
        name="raw_objects_to_refine_job",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Lists new raw Parquet objects and calls the Lambda handler with S3-shaped events "
        "(local target; on AWS the S3 notification invokes the Lambda).",
    )
    def raw_objects_to_refine_job(context: SensorEvaluationContext, lake: LakeResource, refine: RefineResource):
        store = lake.lake()
        cursor = FileCursor.parse(context.cursor)
        listed = [*store.list_files(RAW_CARTEIRA), *store.list_files(RAW_COTACOES)]
        new = [i for i in listed if i.path.endswith(".parquet") and cursor.is_new(i)]
        if not new:
            return SkipReason("no new raw objects")
        for sessions, objects, result in deliver(store, new, refine.jobs(), refine.ledger(), refine.routes(),
                                                 sessions_per_run):
            started = ", ".join(f"{r['job_name']} {r['job_run_id']}" for r in result["runs"])
            context.log.info(f"{objects} raw object(s), sessions {sessions[0]}..{sessions[-1]}: "
                             f"glue run(s) {started or 'not started (duplicates)'}")
        return SensorResult(cursor=cursor.advance(new).dump())

    return raw_objects_to_refine_job


@sensor(
    name="glue_refine_runs",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Records each finished refine job run (portfolio and prices jobs): materializations of the "
    "refined partitions it wrote, "
    "and the glue_job_succeeded check (a failed run shows its error message).",
)
def glue_refine_runs(context: SensorEvaluationContext, lake: LakeResource, refine: RefineResource):
    cursor = RunCursor.parse(context.cursor)
    runs = finished_runs(refine.jobs(), list(refine.job_names()), cursor, on_missing_job=_missing_job(context))
    if not runs:
        return SkipReason("no newly finished refine job runs")
    events = []
    for run in runs:
        events.extend(unreported_run_events(context.instance, lake.lake(), run, refine))
    return SensorResult(asset_events=events, cursor=cursor.advance(runs).dump())


@sensor(
    name="glue_catalog_partitions",
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Observes the catalog partitions (workspace_db) each succeeded refine run registered.",
)
def glue_catalog_partitions(context: SensorEvaluationContext, lake: LakeResource, refine: RefineResource):
    cursor = RunCursor.parse(context.cursor)
    runs = [r for r in finished_runs(refine.jobs(), list(refine.job_names()), cursor,
                                     on_missing_job=_missing_job(context))
            if r.get("JobRunState") == "SUCCEEDED"]
    if not runs:
        return SkipReason("no newly succeeded refine job runs")
    events = []
    for run in runs:
        events.extend(unobserved_catalog_events(context.instance, lake.lake(), run, refine))
    return SensorResult(asset_events=events, cursor=cursor.advance(runs).dump())


def _missing_job(context: SensorEvaluationContext):
    def warn(job_name: str) -> None:
        context.log.warning(f"Glue job {job_name!r} does not exist (not deployed?): its runs are not observed")

    return warn


def sensors_for(settings: Settings) -> list[SensorDefinition]:
    """On AWS, S3 notifications invoke the Lambda; locally a sensor delivers the same events."""
    observers = [glue_refine_runs, glue_catalog_partitions]
    by_target = {
        "local": [build_raw_objects_sensor(settings.refine_sessions_per_run), *observers],
        "aws": observers,
    }
    return by_target[settings.target]


