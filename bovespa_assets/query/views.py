"""The views' one SQL source: files in Athena's (Trino) dialect, translated for DuckDB with sqlglot.

Each ``bovespa_assets/sql/views/<name>.sql`` holds one ``CREATE OR REPLACE VIEW workspace_db.<name>
AS ...`` statement, optionally after ``--`` comment lines that describe it. Athena receives the
statement as written; DuckDB gets sqlglot's translation (``read="trino", write="duckdb"``). A view
may read refined tables and other views, always fully qualified (``workspace_db.tb_x``) so Athena
resolves them whatever database a session uses. New views are picked up from the folder: no list
to edit here.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.qualify_tables import qualify_tables

from ..refine.tables import DATABASE

VIEWS_DIR = Path(__file__).resolve().parent.parent / "sql" / "views"
SOURCE_DIALECT = "trino"  # Athena engine v3


class ViewDefinitionError(ValueError):
    """A view file that cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class ViewDef:
    name: str
    path: Path
    statement: str  # the CREATE OR REPLACE VIEW statement as written (Athena/Trino dialect)
    description: str
    sources: tuple[str, ...]  # tables and views it reads, unqualified names

    @property
    def qualified_name(self) -> str:
        return f"{DATABASE}.{self.name}"

    def statement_for(self, dialect: str) -> str:
        """The statement in another engine's dialect ("duckdb"); unchanged for Athena."""
        if dialect == SOURCE_DIALECT:
            return self.statement
        return translate(self.statement, dialect)

    def missing_sources(self, available: Iterable[str]) -> list[str]:
        have = set(available)
        return [source for source in self.sources if source not in have]


class QueryError(RuntimeError):
    """A query that cannot run: unreadable SQL, or the engine's refusal with its reason."""


def translate_query(sql: str, dialect: str) -> str:
    """A user's Athena (Trino) SQL in ``dialect``; unreadable SQL is a QueryError saying why."""
    try:
        return translate(sql, dialect)
    except SqlglotError as exc:
        raise QueryError(f"not Athena/Trino SQL: {exc}") from None


def translate(sql: str, dialect: str) -> str:
    """Athena (Trino) SQL → ``dialect`` SQL, statement by statement."""
    return ";\n".join(sqlglot.transpile(sql, read=SOURCE_DIALECT, write=dialect))


def qualify(sql: str, database: str = DATABASE) -> str:
    """Fully qualify the table names of a query (``vw_x`` → ``workspace_db.vw_x``), in Trino dialect."""
    try:
        expressions = [e for e in sqlglot.parse(sql, read=SOURCE_DIALECT) if e is not None]
        return ";\n".join(qualify_tables(e, db=database).sql(SOURCE_DIALECT) for e in expressions)
    except SqlglotError as exc:
        raise QueryError(f"not Athena/Trino SQL: {exc}") from None


def _description(text: str) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        lines.append(stripped[2:].strip())
    return " ".join(lines)


def _statement(text: str) -> str:
    """The statement without its leading comment lines and trailing semicolon."""
    lines = text.splitlines()
    while lines and (not lines[0].strip() or lines[0].strip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip().rstrip(";").strip()


def load_view(path: Path) -> ViewDef:
    """Parse and validate one view file (Trino dialect, one CREATE VIEW named after the file)."""
    text = path.read_text(encoding="utf-8")
    statement = _statement(text)
    try:
        parsed = [e for e in sqlglot.parse(statement, read=SOURCE_DIALECT) if e is not None]
    except ParseError as exc:
        raise ViewDefinitionError(f"{path}: not valid Athena/Trino SQL: {exc}") from None
    if len(parsed) != 1 or not isinstance(parsed[0], exp.Create) or parsed[0].kind != "VIEW":
        raise ViewDefinitionError(f"{path}: expected exactly one CREATE OR REPLACE VIEW statement")
    create = parsed[0]
    target = create.this if isinstance(create.this, exp.Table) else create.this.find(exp.Table)
    if target is None or target.name != path.stem or target.db != DATABASE:
        found = target.sql(SOURCE_DIALECT) if target is not None else "nothing"
        raise ViewDefinitionError(f"{path}: the statement must create {DATABASE}.{path.stem}, not {found}")
    ctes = {cte.alias_or_name for cte in create.find_all(exp.CTE)}
    sources: list[str] = []
    for table in create.expression.find_all(exp.Table):
        if not table.db and table.name in ctes:
            continue
        if table.db != DATABASE:
            raise ViewDefinitionError(
                f"{path}: table {table.sql(SOURCE_DIALECT)} must be fully qualified as {DATABASE}.{table.name}"
            )
        if table.name not in sources:
            sources.append(table.name)
    return ViewDef(path.stem, path, statement, _description(text), tuple(sources))


def load_views(folder: Path = VIEWS_DIR) -> list[ViewDef]:
    """Every ``*.sql`` view in ``folder``, ordered so that a view comes after the views it reads."""
    views = {path.stem: load_view(path) for path in sorted(folder.glob("*.sql"))}
    graph = {name: [s for s in view.sources if s in views] for name, view in views.items()}
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise ViewDefinitionError(f"{folder}: views read each other in a cycle: {exc.args[1]}") from None
    return [views[name] for name in order]


def creatable(views: list[ViewDef], tables: Iterable[str]) -> tuple[list[ViewDef], dict[str, str]]:
    """Views whose sources exist (tables, or views creatable before them), and why each other is skipped."""
    available = set(tables)
    ready, skipped = [], {}
    for view in views:
        missing = view.missing_sources(available)
        if missing:
            skipped[view.name] = f"skipped {view.name}: no {', '.join(missing)} in {DATABASE} yet"
            continue
        ready.append(view)
        available.add(view.name)
    return ready, skipped
