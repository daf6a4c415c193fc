"""Athena through pyathena: the query engine of the aws target.

Views are created in ``workspace_db`` from their SQL files exactly as written. Every statement is
sent with the configured workgroup, result location and database, and queries are fully qualified
first (``vw_x`` → ``workspace_db.vw_x``), so they mean the same whatever database a workgroup or a
console session defaults to. Which tables and views exist comes from the Glue Data Catalog, the
catalog Athena itself reads.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..refine.tables import DATABASE
from .views import SOURCE_DIALECT, QueryError, ViewDef, creatable, load_views, qualify


class AthenaQueryEngine:
    name = "athena"

    def __init__(self, workgroup: str, output_location: str, database: str = DATABASE,
                 region_name: str | None = None, views: list[ViewDef] | None = None):
        import boto3
        import pyathena

        self.workgroup, self.output_location, self.database = workgroup, output_location, database
        self.connection = pyathena.connect(
            s3_staging_dir=output_location, work_group=workgroup, schema_name=database, region_name=region_name,
        )
        self.glue = boto3.client("glue", region_name=region_name)
        self.views, self.skipped = creatable(load_views() if views is None else views, self.tables())

    def tables(self) -> set[str]:
        """Tables and views of the database in the Glue Data Catalog (views are VIRTUAL_VIEW tables)."""
        names: set[str] = set()
        try:
            for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=self.database):
                names.update(table["Name"] for table in page.get("TableList", []))
        except self.glue.exceptions.EntityNotFoundException:
            return set()
        return names

    def _execute(self, sql: str) -> Any:
        from pyathena.error import Error

        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
        except Error as exc:
            raise QueryError(f"Athena ({self.workgroup}): {exc}") from None
        return cursor

    def create_view(self, view: ViewDef) -> str:
        statement = view.statement_for(SOURCE_DIALECT)
        self._execute(statement)
        return statement

    def query(self, sql: str) -> pd.DataFrame:
        cursor = self._execute(qualify(sql, self.database))
        columns = [column[0] for column in cursor.description or []]
        return pd.DataFrame(cursor.fetchall() if columns else [], columns=columns)

    def close(self) -> None:
        self.connection.close()
