"""The query engine: Athena on AWS, DuckDB over the local refined Parquet locally (same SQL files).

The engine is opened on first use and shared by every step of a run that runs in one process (the
CLI's runs), so the local lake is loaded once per run rather than once per asset; it is closed
when the run's resources are torn down.
"""

from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from ..refine.tables import DATABASE


class QueryEngineResource(ConfigurableResource):
    database: str = DATABASE
    _engine: Any = PrivateAttr(default=None)

    def engine(self) -> Any:
        """An engine with ``tables()``, ``create_view(view)``, ``query(sql) -> DataFrame``, ``close()``,
        and ``views``/``skipped``: the views it can create and why the others cannot be."""
        if self._engine is None:
            self._engine = self.open_engine()
        return self._engine

    def open_engine(self) -> Any:
        """A new engine, owned by the caller (close it)."""
        raise NotImplementedError

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


class LocalQueryEngineResource(QueryEngineResource):
    lake_uri: str
    cache_dir: str | None = None  # where loaded tables are kept between connections (BOVESPA_HOME/duckdb)

    def open_engine(self) -> Any:
        from ..query.duckdb_engine import DuckDBQueryEngine

        return DuckDBQueryEngine(self.lake_uri, cache_dir=self.cache_dir)


class AthenaQueryEngineResource(QueryEngineResource):
    workgroup: str
    output_location: str  # s3://… where Athena writes query results
    region_name: str | None = None

    def open_engine(self) -> Any:
        from ..query.athena_engine import AthenaQueryEngine

        return AthenaQueryEngine(self.workgroup, self.output_location, self.database, self.region_name)
