"""DuckDB over the local refined Parquet: the local stand-in for Athena.

Every table folder under ``<lake>/refined/`` (Hive partitions, one file each) is loaded once per
connection into schema ``workspace_db``, which is also first on the search path, so ``tb_x`` and
``workspace_db.tb_x`` both work as on Athena. Loading once matters: ``tb_carteira_refined`` holds
one tiny file per session and ticker, and opening thousands of files costs far more than any query
over the ~100 rows per session they hold. The views are then created from their Athena SQL,
translated by sqlglot; a view whose sources are not in the lake is skipped and says why.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd

from ..refine.tables import DATABASE, REFINED_PREFIX, TABLES
from .views import QueryError, ViewDef, creatable, load_views, translate_query

DIALECT = "duckdb"
_DUCKDB_TYPES = {"date": "DATE", "string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT"}


def _partition_depth(folder: Path) -> int:
    """How many ``key=value`` folder levels lie above the table's files (0: files at the top)."""
    depth, current = 0, folder
    while True:
        entries = sorted((e for e in os.scandir(current) if not e.name.startswith((".", "_"))), key=lambda e: e.name)
        if not entries or any(e.is_file() for e in entries):
            return depth
        current, depth = Path(entries[0].path), depth + 1


class DuckDBQueryEngine:
    """A DuckDB connection with the lake's refined tables and the views over them."""

    name = "duckdb"

    def __init__(self, lake_uri: str, views: list[ViewDef] | None = None):
        if "://" in lake_uri:
            raise QueryError(f"lake {lake_uri}: the local query engine reads a folder lake, not an object store")
        self.refined = Path(lake_uri) / REFINED_PREFIX
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute(f"CREATE SCHEMA {DATABASE}")
        self.con.execute(f"SET search_path = '{DATABASE},main'")
        self.loaded = self._load_tables()
        self.views, self.skipped = creatable(load_views() if views is None else views, self.loaded)
        for view in self.views:
            self.create_view(view)

    def _load_tables(self) -> dict[str, int]:
        """Load every refined table folder holding Parquet files; returns table → rows."""
        if not self.refined.is_dir():
            return {}
        known = {table.name: table for table in TABLES}
        loaded = {}
        for folder in sorted(p for p in self.refined.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            depth = _partition_depth(folder)
            files = "/".join([str(folder), *["*"] * depth, "*.parquet"])
            if not any(folder.glob("/".join(["*"] * depth + ["*.parquet"]))):
                continue
            options = "hive_partitioning = true, union_by_name = true"
            if folder.name in known:
                types = ", ".join(f"'{k}': '{_DUCKDB_TYPES[t]}'" for k, t in known[folder.name].partition_keys)
                options += f", hive_types = {{{types}}}"
            self.con.execute(
                f"CREATE TABLE {DATABASE}.{folder.name} AS SELECT * FROM read_parquet('{files}', {options})"
            )
            loaded[folder.name] = self.con.execute(f"SELECT count(*) FROM {DATABASE}.{folder.name}").fetchone()[0]
        return loaded

    def tables(self) -> set[str]:
        return set(self.loaded)

    def create_view(self, view: ViewDef) -> str:
        """(Re)create one view from its Athena SQL; returns the DuckDB statement that ran."""
        statement = view.statement_for(DIALECT)
        try:
            self.con.execute(statement)
        except duckdb.Error as exc:
            raise QueryError(f"view {view.name} ({view.path}): {exc}") from None
        return statement

    def query(self, sql: str) -> pd.DataFrame:
        """Run Athena (Trino) SQL, translated for DuckDB; the result as a DataFrame."""
        statement = translate_query(sql, DIALECT)
        try:
            relation = self.con.sql(statement)
        except duckdb.Error as exc:
            raise QueryError(str(exc).strip()) from None
        return pd.DataFrame() if relation is None else relation.to_arrow_table().to_pandas()

    def close(self) -> None:
        self.con.close()
