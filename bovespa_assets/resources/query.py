"""The query engine: Athena on AWS, DuckDB over the local refined Parquet locally (same SQL files).

Each use opens its own engine (an asset step, a CLI command) and closes it. Locally the loaded
tables are kept by fingerprint under ``cache_dir``, so only the first engine after a change of the
lake reads its many small files.
"""

from typing import Any

from dagster import ConfigurableResource

from ..refine.tables import DATABASE


class QueryEngineResource(ConfigurableResource):
    database: str = DATABASE

    def open_engine(self) -> Any:
        """A new engine, owned by the caller (close it): ``tables()``, ``create_view(view)``,
        ``query(sql) -> DataFrame``, ``close()``, and ``views``/``skipped``: the views it can create
        and why the others cannot be created yet."""
        raise NotImplementedError


class LocalQueryEngineResource(QueryEngineResource):
    lake_uri: str
    cache_dir: str | None = None  # where loaded tables are kept between engines (BOVESPA_HOME/duckdb)

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
