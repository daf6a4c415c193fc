"""The one Definitions object `dagster dev` loads (see workspace.yaml)."""

from dagster import AssetSelection, Definitions, colored_console_logger, define_asset_job

from .assets.prices import build_raw_prices_asset
from .assets.raw import build_raw_portfolio_asset
from .assets.refined import build_job_check, build_price_specs, build_refined_specs
from .assets.views import GROUP as VIEWS_GROUP
from .assets.views import build_view_assets, build_views_automation_sensor, charts_carteira
from .partitions import month_partitions_for, partitions_for
from .progress import progress_logger
from .refine.tables import REFINE_JOBS
from .resources import resources_for
from .schedules import build_daily_schedule
from .sensors import sensors_for
from .settings import Settings

RAW_JOB = "raw_carteira"
VIEWS_JOB = "refresh_views"


def build_definitions(settings: Settings) -> Definitions:
    partitions = partitions_for(settings)
    raw_assets = [
        *(build_raw_portfolio_asset(index, partitions, settings.sessions_per_run) for index in settings.indices),
        *(build_raw_prices_asset(symbol, partitions, settings.sessions_per_run) for symbol in settings.price_symbols),
    ]
    raw_job = define_asset_job(RAW_JOB, selection=AssetSelection.groups("raw"), partitions_def=partitions)
    views_job = define_asset_job(VIEWS_JOB, selection=AssetSelection.groups(VIEWS_GROUP))
    return Definitions(
        assets=[
            *raw_assets,
            *build_refined_specs(settings.indices, partitions),
            *build_price_specs(settings.price_symbols, partitions, month_partitions_for(settings)),
            build_view_assets(),
            charts_carteira,
        ],
        asset_checks=[build_job_check(job) for job in REFINE_JOBS],
        jobs=[raw_job, views_job],
        schedules=[build_daily_schedule(raw_job, running=settings.target == "aws")],
        sensors=[*sensors_for(settings), build_views_automation_sensor()],
        resources=resources_for(settings),
        loggers={"console": colored_console_logger, "progress": progress_logger},
    )


defs = build_definitions(Settings.from_env())
