"""The one Definitions object `dagster dev` loads (see workspace.yaml)."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, colored_console_logger, define_asset_job

from .assets.raw import build_raw_portfolio_asset
from .partitions import partitions_for
from .progress import progress_logger
from .resources import resources_for
from .schedules import build_daily_schedule
from .settings import Settings

RAW_JOB = "raw_carteira"


def build_definitions(settings: Settings) -> Definitions:
    partitions = partitions_for(settings)
    raw_assets = [
        build_raw_portfolio_asset(index, partitions, settings.sessions_per_run) for index in settings.indices
    ]
    raw_job = define_asset_job(RAW_JOB, selection=AssetSelection.groups("raw"), partitions_def=partitions)
    return Definitions(
        assets=raw_assets,
        jobs=[raw_job],
        schedules=[build_daily_schedule(raw_job, running=settings.target == "aws")],
        resources=resources_for(settings),
        loggers={"console": colored_console_logger, "progress": progress_logger},
    )


defs = build_definitions(Settings.from_env())
