"""The one Definitions object `dagster dev` loads (see workspace.yaml)."""

from dagster import AssetSelection, Definitions, colored_console_logger, define_asset_job

from .assets.raw import build_raw_portfolio_asset
from .assets.refined import build_refined_specs, glue_job_succeeded
from .assets.views import GROUP as VIEWS_GROUP
from .assets.views import build_view_assets, build_views_automation_sensor, charts_carteira
from .partitions import partitions_for
from .progress import progress_logger
from .resources import resources_for
from .schedules import build_daily_schedule
from .sensors import sensors_for
from .settings import Settings

RAW_JOB = "raw_carteira"
VIEWS_JOB = "refresh_views"


def build_definitions(settings: Settings) -> Definitions:
    partitions = partitions_for(settings)
    raw_assets = [
        build_raw_portfolio_asset(index, partitions, settings.sessions_per_run) for index in settings.indices
    ]
    raw_job = define_asset_job(RAW_JOB, selection=AssetSelection.groups("raw"), partitions_def=partitions)
    views_job = define_asset_job(VIEWS_JOB, selection=AssetSelection.groups(VIEWS_GROUP))
    return Definitions(
        assets=[*raw_assets, *build_refined_specs(settings.indices, partitions), build_view_assets(), charts_carteira],
        asset_checks=[glue_job_succeeded],
        jobs=[raw_job, views_job],
        schedules=[build_daily_schedule(raw_job, running=settings.target == "aws")],
        sensors=[*sensors_for(settings), build_views_automation_sensor()],
        resources=resources_for(settings),
        loggers={"console": colored_console_logger, "progress": progress_logger},
    )


defs = build_definitions(Settings.from_env())
