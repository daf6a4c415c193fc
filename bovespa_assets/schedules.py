"""The daily materialization of the current session, on B3's calendar."""


from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from .partitions import B3_TIMEZONE, is_session

# B3 publishes a session's portfolio the evening before; at 08:30 São Paulo time it is the one
# served. If B3 is late, the raw asset asks Dagster to retry later (never stores the wrong day).
DAILY_CRON = "30 8 * * 1-5"


def build_daily_schedule(job: UnresolvedAssetJobDefinition, running: bool) -> ScheduleDefinition:
    @schedule(
        name="daily_carteira",
        cron_schedule=DAILY_CRON,
        execution_timezone=B3_TIMEZONE,
        job=job,
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
        description="Materializes today's B3 session on every trading day (skips B3 holidays).",
    )
    def daily_carteira(context: ScheduleEvaluationContext):
        session = context.scheduled_execution_time.date()
        if not is_session(session):
            return SkipReason(f"{session} is not a B3 trading session")
        key = session.isoformat()
        return RunRequest(run_key=key, partition_key=key)

    return daily_carteira
