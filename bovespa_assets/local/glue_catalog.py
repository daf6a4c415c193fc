"""The local Glue Data Catalog: the subset of boto3's Glue client the project calls, kept in one SQLite file.

Callers hold either ``boto3.client("glue")`` or a :class:`LocalGlueCatalog`; both take the same keyword
arguments, return the same response shapes (timezone-aware datetimes included) and raise
``botocore.exceptions.ClientError`` with Glue's error codes. Like Glue, database and table names are
case-insensitive and stored in lowercase.

Several processes (the Dagster daemon, the webserver, a job run) may use the same file at once: the
database runs in WAL mode, every call is one short transaction (writes take the write lock up front
with ``BEGIN IMMEDIATE``) and a busy timeout makes a writer wait for another instead of failing.

Partition expressions (``get_partitions(Expression=...)``) are kept small: comparisons
(``=``, ``<>``, ``!=``, ``<``, ``<=``, ``>``, ``>=``) of a partition key with a quoted string or a
number, joined by ``AND``; anything else is refused with ``InvalidInputException`` (Glue's code for a
bad expression) rather than answered wrongly.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ParamValidationError

from .glue_errors import check_batch_size, check_max_results, client_error

LOCAL_CATALOG_ID = "000000000000"
BATCH_CREATE_PARTITION_MAX = 100  # Glue's limit on PartitionInputList
BATCH_GET_PARTITION_MAX = 1000  # Glue's limit on PartitionsToGet
BATCH_DELETE_PARTITION_MAX = 25  # Glue's limit on PartitionsToDelete
GET_PARTITIONS_MAX_RESULTS = 1000  # Glue's largest page, also the default here
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS glue_databases (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    create_time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS glue_tables (
    database_name TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    create_time REAL NOT NULL,
    update_time REAL NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (database_name, name)
);
CREATE TABLE IF NOT EXISTS glue_partitions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    database_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    vals TEXT NOT NULL,
    body TEXT NOT NULL,
    creation_time REAL NOT NULL,
    UNIQUE (database_name, table_name, vals)
);
CREATE INDEX IF NOT EXISTS glue_partitions_first_key
    ON glue_partitions (database_name, table_name, json_extract(vals, '$[0]'));
"""

_NUMERIC_TYPES = ("tinyint", "smallint", "int", "integer", "bigint", "float", "double", "decimal", "real")
_COMPARISON = re.compile(
    r"""\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)\s*
        (?P<op><=|>=|<>|!=|=|<|>)\s*
        (?P<lit>'(?:[^']|'')*'|-?\d+(?:\.\d+)?)\s*""",
    re.VERBOSE,
)
_AND = re.compile(r"AND\b", re.IGNORECASE)


def _ok(payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(payload or {}), "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _encode(value: Any) -> str:
    """JSON for stored inputs; datetimes (e.g. LastAccessTime) survive the round trip."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            aware = obj if obj.tzinfo else obj.replace(tzinfo=UTC)
            return {"$datetime": aware.timestamp()}
        raise TypeError(f"{type(obj).__name__} is not valid in a Glue input")

    return json.dumps(value, default=default, sort_keys=True)


def _decode(text: str) -> Any:
    def hook(obj: dict[str, Any]) -> Any:
        return _dt(obj["$datetime"]) if obj.keys() == {"$datetime"} else obj

    return json.loads(text, object_hook=hook)


def _values_key(values: Sequence[str]) -> str:
    return json.dumps(list(values), separators=(",", ":"))


def _check_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ParamValidationError(
            report=f"Invalid type for parameter {name}, value: {value!r}, valid types: <class 'str'>"
        )
    return value


def _check_values(values: Any, name: str) -> list[str]:
    if not isinstance(values, list | tuple):
        raise ParamValidationError(report=f"Invalid type for parameter {name}, value: {values!r}, valid types: list")
    return [_check_str(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _make_token(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode()


def _read_token(token: str | None, operation: str) -> int:
    if token is None:
        return 0
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise client_error("InvalidInputException", "Invalid NextToken", operation) from None
    if not isinstance(position, int):
        raise client_error("InvalidInputException", "Invalid NextToken", operation)
    return position


def compile_expression(expression: str, partition_keys: Sequence[Mapping[str, Any]]) -> tuple[str, list[Any]]:
    """SQL (over ``vals``, the JSON array of a partition's values) for a Glue partition expression.

    Raises ValueError for what the local catalog does not evaluate; the caller turns it into Glue's
    ``InvalidInputException``.
    """
    positions = {k["Name"].lower(): (i, str(k.get("Type", "string")).lower()) for i, k in enumerate(partition_keys)}
    clauses: list[str] = []
    params: list[Any] = []
    pos = 0
    text = expression.strip()
    while True:
        match = _COMPARISON.match(text, pos)
        if not match:
            raise ValueError(
                f"Unsupported expression {expression!r}: the local catalog evaluates only comparisons of a "
                "partition key with a literal ('=', '<>', '!=', '<', '<=', '>', '>='), joined by AND"
            )
        key = match["key"].strip("`").lower()
        if key not in positions:
            raise ValueError(f"Unsupported expression {expression!r}: {key!r} is not a partition key")
        index, key_type = positions[key]
        literal = match["lit"]
        value: Any = literal[1:-1].replace("''", "'") if literal.startswith("'") else literal
        column = f"json_extract(vals, '$[{index}]')"
        if key_type.startswith(_NUMERIC_TYPES):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"Unsupported expression {expression!r}: {literal} is not a number") from None
            column = f"CAST({column} AS REAL)"
        op = "!=" if match["op"] == "<>" else match["op"]
        clauses.append(f"{column} {op} ?")
        params.append(value)
        pos = match.end()
        if pos == len(text):
            return " AND ".join(clauses), params
        joiner = _AND.match(text, pos)
        if not joiner:
            raise ValueError(
                f"Unsupported expression {expression!r}: the local catalog joins comparisons only with AND"
            )
        pos = joiner.end()


class LocalGlueCatalog:
    """A Glue Data Catalog in one SQLite file, answering the boto3 Glue calls the project makes."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        finally:
            conn.close()

    def __repr__(self) -> str:
        return f"LocalGlueCatalog({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One short transaction on a fresh connection (safe across threads, forks and processes)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # -- lookups -----------------------------------------------------------------------------------

    @staticmethod
    def _database_row(conn: sqlite3.Connection, name: str, operation: str) -> tuple[str, float]:
        row = conn.execute("SELECT body, create_time FROM glue_databases WHERE name = ?", (name.lower(),)).fetchone()
        if row is None:
            raise client_error("EntityNotFoundException", f"Database {name} not found.", operation)
        return row

    def _table_row(self, conn: sqlite3.Connection, database: str, table: str, operation: str) -> dict[str, Any]:
        self._database_row(conn, database, operation)
        row = conn.execute(
            "SELECT body, create_time, update_time, version FROM glue_tables WHERE database_name = ? AND name = ?",
            (database.lower(), table.lower()),
        ).fetchone()
        if row is None:
            raise client_error("EntityNotFoundException", f"Table {table} not found.", operation)
        body, create_time, update_time, version = row
        return {
            **_decode(body),
            "DatabaseName": database.lower(),
            "CreateTime": _dt(create_time),
            "UpdateTime": _dt(update_time),
            "Retention": 0,
            "CatalogId": LOCAL_CATALOG_ID,
            "VersionId": str(version),
            "IsRegisteredWithLakeFormation": False,
        }

    @staticmethod
    def _partition(database: str, table: str, vals: str, body: str, creation_time: float) -> dict[str, Any]:
        return {
            "Values": json.loads(vals),
            "DatabaseName": database,
            "TableName": table,
            "CreationTime": _dt(creation_time),
            **_decode(body),
            "CatalogId": LOCAL_CATALOG_ID,
        }

    # -- databases ---------------------------------------------------------------------------------

    def create_database(self, *, DatabaseInput: Mapping[str, Any], CatalogId: str | None = None,
                        Tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        name = _check_str(DatabaseInput.get("Name"), "DatabaseInput.Name").lower()
        body = {**DatabaseInput, "Name": name}
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO glue_databases (name, body, create_time) VALUES (?, ?, ?)",
                    (name, _encode(body), time.time()),
                )
            except sqlite3.IntegrityError:
                raise client_error("AlreadyExistsException", "Database already exists.", "CreateDatabase") from None
        return _ok()

    def get_database(self, *, Name: str, CatalogId: str | None = None) -> dict[str, Any]:
        with self._transaction(write=False) as conn:
            body, create_time = self._database_row(conn, Name, "GetDatabase")
        return _ok({"Database": {**_decode(body), "CreateTime": _dt(create_time), "CatalogId": LOCAL_CATALOG_ID}})

    def get_databases(self, *, CatalogId: str | None = None, NextToken: str | None = None,
                      MaxResults: int | None = None, ResourceShareType: str | None = None,
                      AttributesToGet: Sequence[str] | None = None) -> dict[str, Any]:
        start = _read_token(NextToken, "GetDatabases")
        limit = check_max_results(MaxResults, 100, "GetDatabases") if MaxResults is not None else None
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT body, create_time FROM glue_databases ORDER BY name").fetchall()
        databases = [{**_decode(b), "CreateTime": _dt(t), "CatalogId": LOCAL_CATALOG_ID} for b, t in rows]
        return _ok(self._page(databases, "DatabaseList", start, limit))

    # -- tables ------------------------------------------------------------------------------------

    def create_table(self, *, DatabaseName: str, TableInput: Mapping[str, Any], CatalogId: str | None = None,
                     **options: Any) -> dict[str, Any]:
        name = _check_str(TableInput.get("Name"), "TableInput.Name").lower()
        body = {**TableInput, "Name": name}
        now = time.time()
        with self._transaction(write=True) as conn:
            self._database_row(conn, DatabaseName, "CreateTable")
            try:
                conn.execute(
                    "INSERT INTO glue_tables (database_name, name, body, create_time, update_time, version)"
                    " VALUES (?, ?, ?, ?, ?, 1)",
                    (DatabaseName.lower(), name, _encode(body), now, now),
                )
            except sqlite3.IntegrityError:
                raise client_error("AlreadyExistsException", "Table already exists.", "CreateTable") from None
        return _ok()

    def update_table(self, *, DatabaseName: str, TableInput: Mapping[str, Any], CatalogId: str | None = None,
                     **options: Any) -> dict[str, Any]:
        name = _check_str(TableInput.get("Name"), "TableInput.Name").lower()
        body = {**TableInput, "Name": name}
        with self._transaction(write=True) as conn:
            self._table_row(conn, DatabaseName, name, "UpdateTable")
            conn.execute(
                "UPDATE glue_tables SET body = ?, update_time = ?, version = version + 1"
                " WHERE database_name = ? AND name = ?",
                (_encode(body), time.time(), DatabaseName.lower(), name),
            )
        return _ok()

    def get_table(self, *, DatabaseName: str, Name: str, CatalogId: str | None = None,
                  **options: Any) -> dict[str, Any]:
        with self._transaction(write=False) as conn:
            return _ok({"Table": self._table_row(conn, DatabaseName, Name, "GetTable")})

    def get_tables(self, *, DatabaseName: str, CatalogId: str | None = None, Expression: str | None = None,
                   NextToken: str | None = None, MaxResults: int | None = None, **options: Any) -> dict[str, Any]:
        start = _read_token(NextToken, "GetTables")
        limit = check_max_results(MaxResults, 100, "GetTables") if MaxResults is not None else None
        with self._transaction(write=False) as conn:
            self._database_row(conn, DatabaseName, "GetTables")
            names = [r[0] for r in conn.execute(
                "SELECT name FROM glue_tables WHERE database_name = ? ORDER BY name", (DatabaseName.lower(),)
            )]
            if Expression:
                try:
                    pattern = re.compile(Expression, re.IGNORECASE)
                except re.error as exc:
                    raise client_error("InvalidInputException", f"Invalid Expression: {exc}", "GetTables") from None
                names = [n for n in names if pattern.fullmatch(n)]
            tables = [self._table_row(conn, DatabaseName, n, "GetTables") for n in names]
        return _ok(self._page(tables, "TableList", start, limit))

    @staticmethod
    def _page(items: list[dict[str, Any]], key: str, start: int, limit: int | None) -> dict[str, Any]:
        end = len(items) if limit is None else start + limit
        page: dict[str, Any] = {key: items[start:end]}
        if end < len(items):
            page["NextToken"] = _make_token(end)
        return page

    # -- partitions --------------------------------------------------------------------------------

    def batch_create_partition(self, *, DatabaseName: str, TableName: str,
                               PartitionInputList: Sequence[Mapping[str, Any]],
                               CatalogId: str | None = None) -> dict[str, Any]:
        """Create the partitions; one already there is reported in ``Errors`` (as Glue does), the others made."""
        operation = "BatchCreatePartition"
        check_batch_size(PartitionInputList, BATCH_CREATE_PARTITION_MAX, "partitionInputList", operation)
        database, table = DatabaseName.lower(), TableName.lower()
        errors: list[dict[str, Any]] = []
        with self._transaction(write=True) as conn:
            keys = self._table_row(conn, DatabaseName, TableName, operation).get("PartitionKeys") or []
            inputs = []
            for i, item in enumerate(PartitionInputList):
                values = _check_values(item.get("Values"), f"PartitionInputList[{i}].Values")
                if len(values) != len(keys):
                    raise client_error(
                        "InvalidInputException",
                        "The number of partition keys do not match the number of partition values",
                        operation,
                    )
                inputs.append((values, {k: v for k, v in item.items() if k != "Values"}))
            fresh: dict[str, tuple[list[str], dict[str, Any]]] = {}
            for values, body in inputs:
                key = _values_key(values)
                exists = key in fresh or conn.execute(
                    "SELECT 1 FROM glue_partitions WHERE database_name = ? AND table_name = ? AND vals = ?",
                    (database, table, key),
                ).fetchone()
                if exists:
                    errors.append({
                        "PartitionValues": values,
                        "ErrorDetail": {
                            "ErrorCode": "AlreadyExistsException",
                            "ErrorMessage": "Partition already exists.",
                        },
                    })
                else:
                    fresh[key] = (values, body)
            now = time.time()
            conn.executemany(
                "INSERT INTO glue_partitions (database_name, table_name, vals, body, creation_time)"
                " VALUES (?, ?, ?, ?, ?)",
                [(database, table, key, _encode(body), now) for key, (_, body) in sorted(
                    fresh.items(), key=lambda kv: kv[1][0]
                )],
            )
        return _ok({"Errors": errors})

    def get_partitions(self, *, DatabaseName: str, TableName: str, Expression: str | None = None,
                       NextToken: str | None = None, MaxResults: int | None = None, CatalogId: str | None = None,
                       **options: Any) -> dict[str, Any]:
        """Partitions in creation order (then by values), a page at a time (1000 unless MaxResults says less)."""
        operation = "GetPartitions"
        limit = check_max_results(MaxResults, GET_PARTITIONS_MAX_RESULTS, operation)
        after = _read_token(NextToken, operation)
        database, table = DatabaseName.lower(), TableName.lower()
        with self._transaction(write=False) as conn:
            keys = self._table_row(conn, DatabaseName, TableName, operation).get("PartitionKeys") or []
            where, params = "", []
            if Expression and Expression.strip():
                try:
                    clause, params = compile_expression(Expression, keys)
                except ValueError as exc:
                    raise client_error("InvalidInputException", str(exc), operation) from None
                where = f" AND {clause}"
            rows = conn.execute(
                "SELECT seq, vals, body, creation_time FROM glue_partitions"
                f" WHERE database_name = ? AND table_name = ? AND seq > ?{where} ORDER BY seq LIMIT ?",
                (database, table, after, *params, limit + 1),
            ).fetchall()
        response: dict[str, Any] = {
            "Partitions": [self._partition(database, table, v, b, t) for _, v, b, t in rows[:limit]]
        }
        if len(rows) > limit:
            response["NextToken"] = _make_token(rows[limit - 1][0])
        return _ok(response)

    def get_partition(self, *, DatabaseName: str, TableName: str, PartitionValues: Sequence[str],
                      CatalogId: str | None = None) -> dict[str, Any]:
        values = _check_values(PartitionValues, "PartitionValues")
        database, table = DatabaseName.lower(), TableName.lower()
        with self._transaction(write=False) as conn:
            self._table_row(conn, DatabaseName, TableName, "GetPartition")
            row = conn.execute(
                "SELECT vals, body, creation_time FROM glue_partitions"
                " WHERE database_name = ? AND table_name = ? AND vals = ?",
                (database, table, _values_key(values)),
            ).fetchone()
        if row is None:
            raise client_error("EntityNotFoundException", "Cannot find partition.", "GetPartition")
        return _ok({"Partition": self._partition(database, table, *row)})

    def batch_get_partition(self, *, DatabaseName: str, TableName: str,
                            PartitionsToGet: Sequence[Mapping[str, Any]], CatalogId: str | None = None,
                            **options: Any) -> dict[str, Any]:
        """The partitions that exist, in request order; missing ones are simply absent (as in Glue)."""
        operation = "BatchGetPartition"
        if len(PartitionsToGet) > BATCH_GET_PARTITION_MAX:
            raise client_error(
                "ValidationException",
                "1 validation error detected: Value at 'partitionsToGet' failed to satisfy constraint: "
                f"Member must have length less than or equal to {BATCH_GET_PARTITION_MAX}",
                operation,
            )
        database, table = DatabaseName.lower(), TableName.lower()
        partitions = []
        with self._transaction(write=False) as conn:
            self._table_row(conn, DatabaseName, TableName, operation)
            for i, item in enumerate(PartitionsToGet):
                key = _values_key(_check_values(item.get("Values"), f"PartitionsToGet[{i}].Values"))
                row = conn.execute(
                    "SELECT vals, body, creation_time FROM glue_partitions"
                    " WHERE database_name = ? AND table_name = ? AND vals = ?",
                    (database, table, key),
                ).fetchone()
                if row is not None:
                    partitions.append(self._partition(database, table, *row))
        return _ok({"Partitions": partitions, "UnprocessedKeys": []})

    def batch_delete_partition(self, *, DatabaseName: str, TableName: str,
                               PartitionsToDelete: Sequence[Mapping[str, Any]],
                               CatalogId: str | None = None) -> dict[str, Any]:
        """Delete the partitions; a missing one is reported in ``Errors`` (as Glue does), the others deleted."""
        operation = "BatchDeletePartition"
        check_batch_size(PartitionsToDelete, BATCH_DELETE_PARTITION_MAX, "partitionsToDelete", operation)
        database, table = DatabaseName.lower(), TableName.lower()
        errors: list[dict[str, Any]] = []
        with self._transaction(write=True) as conn:
            self._table_row(conn, DatabaseName, TableName, operation)
            for i, item in enumerate(PartitionsToDelete):
                values = _check_values(item.get("Values"), f"PartitionsToDelete[{i}].Values")
                deleted = conn.execute(
                    "DELETE FROM glue_partitions WHERE database_name = ? AND table_name = ? AND vals = ?",
                    (database, table, _values_key(values)),
                ).rowcount
                if not deleted:
                    errors.append({
                        "PartitionValues": values,
                        "ErrorDetail": {"ErrorCode": "EntityNotFoundException", "ErrorMessage": "Partition not found"},
                    })
        return _ok({"Errors": errors})

    def delete_partition(self, *, DatabaseName: str, TableName: str, PartitionValues: Sequence[str],
                         CatalogId: str | None = None) -> dict[str, Any]:
        values = _check_values(PartitionValues, "PartitionValues")
        with self._transaction(write=True) as conn:
            self._table_row(conn, DatabaseName, TableName, "DeletePartition")
            deleted = conn.execute(
                "DELETE FROM glue_partitions WHERE database_name = ? AND table_name = ? AND vals = ?",
                (DatabaseName.lower(), TableName.lower(), _values_key(values)),
            ).rowcount
        if not deleted:
            raise client_error("EntityNotFoundException", "Cannot find partition.", "DeletePartition")
        return _ok()
