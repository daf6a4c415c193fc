"""Resources, chosen by target in one place (``resources_for``): assets never ask which target runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..settings import Settings
from .b3 import B3PortfolioResource
from .lake import LakeResource
from .prices import YahooPricesResource
from .query import AthenaQueryEngineResource, LocalQueryEngineResource, QueryEngineResource
from .refine import AwsRefineResource, LocalRefineResource, RefineResource


def _portfolio_source(settings: Settings) -> B3PortfolioResource:
    return B3PortfolioResource(
        archive_uri=settings.archive_uri, base_url=settings.b3_base_url, offline=settings.offline
    )


def _price_source(settings: Settings) -> YahooPricesResource:
    return YahooPricesResource(
        archive_uri=settings.price_archive_uri, offline=settings.offline, cache_dir=str(settings.home / "yfinance")
    )


def _local(settings: Settings) -> dict[str, Any]:
    return {
        "lake": LakeResource(uri=settings.lake_uri),
        "b3": _portfolio_source(settings),
        "prices": _price_source(settings),
        "refine": LocalRefineResource(home=str(settings.home), lake_uri=settings.lake_uri,
                                      job_name=settings.glue_job_name, prices_job_name=settings.glue_prices_job_name),
        "query_engine": LocalQueryEngineResource(lake_uri=settings.lake_uri, cache_dir=str(settings.home / "duckdb")),
    }


def _aws(settings: Settings) -> dict[str, Any]:
    return {
        "lake": LakeResource(uri=settings.lake_uri, s3_endpoint_url=settings.s3_endpoint_url),
        "b3": _portfolio_source(settings),
        "prices": _price_source(settings),
        "refine": AwsRefineResource(job_name=settings.glue_job_name, prices_job_name=settings.glue_prices_job_name),
        "query_engine": AthenaQueryEngineResource(
            workgroup=settings.athena_workgroup, output_location=settings.athena_output_location
        ),
    }


RESOURCES_BY_TARGET: dict[str, Callable[[Settings], dict[str, Any]]] = {"local": _local, "aws": _aws}


def resources_for(settings: Settings) -> dict[str, Any]:
    return RESOURCES_BY_TARGET[settings.target](settings)


__all__ = [
    "B3PortfolioResource", "LakeResource", "QueryEngineResource", "RefineResource", "YahooPricesResource",
    "resources_for",
]
