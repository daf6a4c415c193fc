"""DuckDB over the local refined Parquet: the local stand-in for Athena.

Every table folder under ``<lake>/refined/`` (Hive partitions, one file each) is loaded once per
connection into schema ``workspace_db``, which is also first on the search path, so ``tb_x`` and
``workspace_db.tb_x`` both work as on Athena. Loading once matters: ``tb_carteira_refined`` holds
one tiny file per session and ticker, and opening thousands of files costs far more than any query
over the ~100 rows per session they hold. With a ``cache_dir`` (``$BOVESPA_HOME/duckdb``), a loaded
table is also kept there as one Parquet file named by a fingerprint of the table's files (paths,
sizes, modification times), so later connections read one file until the table changes. The views
are then created from their Athena SQL, translated by sqlglot; a view whose sources are not in the
lake is skipped and says why.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import duckdb
import pandas as pd

from ..refine.tables import DATABASE, REFINED_PREFIX, TABLES
from .views import QueryError, ViewDef, creatable, load_views, translate_query

DIALECT = "duckdb"
_DUCKDB_TYPES = {"date": "DATE", "string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT"}
_KNOWN = {table.name: table for table in TABLES}


def _options(table: str) -> str:
    """read_parquet options: Hive partitions, with the contract's key types for the known tables."""
    options = "hive_partitioning = true, union_by_name = true"
    if table in _KNOWN:
        types = ", ".join(f"'{k}': '{_DUCKDB_TYPES[t]}'" for k, t in _KNOWN[table].partition_keys)
        options += f", hive_types = {{{types}}}"
    return options


def _table_files(folder: Path) -> tuple[int, str]:
    """(partition depth, fingerprint) of a table folder: the depth of its Parquet files below it, and a
    hash of every file's path, size and modification time (a changed, added or removed file changes it)."""
    stats, depth = [], None
    for directory, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(n for n in names if n.endswith(".parquet") and not n.startswith((".", "_"))):
            path = Path(directory, name)
            info = path.stat()
            relative = path.relative_to(folder)
            depth = len(relative.parts) - 1 if depth is None else depth
            stats.append(f"{relative}\t{info.st_size}\t{info.st_mtime_ns}")
    return (-1 if depth is None else depth), hashlib.sha256("\n".join(stats).encode()).hexdigest()[:20]


class DuckDBQueryEngine:
    """A DuckDB connection with the lake's refined tables and the views over them."""

    name = "duckdb"

    def __init__(self, lake_uri: str, views: list[ViewDef] | None = None, cache_dir: str | Path | None = None):
        if "://" in lake_uri:
            raise QueryError(f"lake {lake_uri}: the local query engine reads a folder lake, not an object store")
        self.refined = Path(lake_uri) / REFINED_PREFIX
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.loaded_from: dict[str, str] = {}  # table → the cache file or the lake glob it was read from
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
        loaded = {}
        for folder in sorted(p for p in self.refined.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            depth, fingerprint = _table_files(folder)
            if depth < 0:
                continue
            cached = self.cache_dir / f"{folder.name}-{fingerprint}.parquet" if self.cache_dir else None
            hit = cached is not None and cached.exists() and self._read(folder.name, str(cached), "")
            if not hit:
                self._read(folder.name, "/".join([str(folder), *["*"] * depth, "*.parquet"]), _options(folder.name))
                if cached is not None:
                    self._store(folder.name, cached)
            loaded[folder.name] = self.con.execute(f"SELECT count(*) FROM {DATABASE}.{folder.name}").fetchone()[0]
        return loaded

    def _read(self, table: str, files: str, options: str) -> bool:
        """Create ``table`` from Parquet ``files``; False if a cache file vanished meanwhile (another
        process replaced it), so the caller reads the lake instead."""
        try:
            self.con.execute(f"CREATE OR REPLACE TABLE {DATABASE}.{table} AS "
                             f"SELECT * FROM read_parquet('{files}'{', ' + options if options else ''})")
        except duckdb.IOException:
            if options:
                raise
            return False
        self.loaded_from[table] = files
        return True

    def _store(self, table: str, cached: Path) -> None:
        """Keep the loaded table as one Parquet file named by the folder's fingerprint (older ones removed)."""
        cached.parent.mkdir(parents=True, exist_ok=True)
        temp = cached.parent / f".{uuid.uuid4().hex}.tmp"
        self.con.execute(f"COPY {DATABASE}.{table} TO '{temp}' (FORMAT parquet)")
        os.replace(temp, cached)
        for old in cached.parent.glob(f"{table}-*.parquet"):
            if old != cached:
                old.unlink(missing_ok=True)

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
