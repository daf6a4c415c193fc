"""Register the refined tables and their partitions in the Glue Data Catalog (or its local stand-in).

Every function takes a boto3-shaped Glue client: ``boto3.client("glue")`` on AWS, or the local
catalog with the same method names, arguments and answers. Partitions are registered explicitly
with ``batch_create_partition`` (at most 100 per call, Glue's limit) right after they are written:
no crawler, no ``MSCK REPAIR TABLE``, so a partition is queryable as soon as the job ends and the
schema is always the contract's (``tables.py``), never a crawler's guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from .tables import TableDef
from .writer import escape_path_name

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
MAX_PARTITIONS_PER_CALL = 100  # Glue's limit for batch_create_partition
MAX_DELETES_PER_CALL = 25  # Glue's limit for batch_delete_partition


class CatalogError(RuntimeError):
    """The catalog refused something; the message names the database/table and Glue's reason."""


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _columns(pairs: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Name": name, "Type": glue_type} for name, glue_type in pairs]


def storage_descriptor(table_def: TableDef, location: str) -> dict[str, Any]:
    """Parquet storage descriptor; used for the table and (with the partition's folder) each partition."""
    return {
        "Columns": _columns(table_def.columns),
        "Location": location,
        "InputFormat": PARQUET_INPUT_FORMAT,
        "OutputFormat": PARQUET_OUTPUT_FORMAT,
        "Compressed": False,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
        "StoredAsSubDirectories": False,
    }


def table_input(table_def: TableDef, location: str) -> dict[str, Any]:
    return {
        "Name": table_def.name,
        "Description": table_def.description,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
        "PartitionKeys": _columns(table_def.partition_keys),
        "StorageDescriptor": storage_descriptor(table_def, location),
    }


def partition_location(location: str, table_def: TableDef, values: Sequence[str]) -> str:
    """The partition's folder under the table's location (``s3://…`` or a local path/URI)."""
    parts = [f"{name}={escape_path_name(v)}" for (name, _), v in zip(table_def.partition_keys, values, strict=True)]
    return "/".join([location.rstrip("/"), *parts])


def ensure_database(glue: Any, name: str, description: str = "bovespa-assets refined tables") -> bool:
    """Create the database if it is missing; True when it was created."""
    try:
        glue.get_database(Name=name)
        return False
    except ClientError as e:
        if _code(e) != "EntityNotFoundException":
            raise CatalogError(f"Glue database {name}: {e}") from e
    try:
        glue.create_database(DatabaseInput={"Name": name, "Description": description})
    except ClientError as e:
        if _code(e) != "AlreadyExistsException":  # created meanwhile by a concurrent run
            raise CatalogError(f"Glue database {name}: cannot create it: {e}") from e
        return False
    return True


def ensure_table(glue: Any, database: str, table_def: TableDef, location: str) -> bool:
    """Create the table if it is missing (Parquet, partitioned as in the contract); True when created.

    An existing table keeps its definition unless its columns differ from the contract, in which case
    it is updated (``update_table``) when the client offers it; different partition keys cannot be
    fixed in place and are an error.
    """
    wanted = table_input(table_def, location)
    try:
        existing = glue.get_table(DatabaseName=database, Name=table_def.name)["Table"]
    except ClientError as e:
        if _code(e) != "EntityNotFoundException":
            raise CatalogError(f"Glue table {database}.{table_def.name}: {e}") from e
        try:
            glue.create_table(DatabaseName=database, TableInput=wanted)
        except ClientError as e:
            if _code(e) != "AlreadyExistsException":
                raise CatalogError(f"Glue table {database}.{table_def.name}: cannot create it: {e}") from e
            return False
        return True

    def names_types(cols: list[dict[str, str]]) -> list[tuple[str, str]]:
        return [(c["Name"], c["Type"].lower()) for c in cols]

    if names_types(existing.get("PartitionKeys", [])) != names_types(wanted["PartitionKeys"]):
        raise CatalogError(
            f"Glue table {database}.{table_def.name} exists with partition keys "
            f"{names_types(existing.get('PartitionKeys', []))}, expected {names_types(wanted['PartitionKeys'])}"
        )
    columns = names_types(existing.get("StorageDescriptor", {}).get("Columns", []))
    if columns != names_types(wanted["StorageDescriptor"]["Columns"]):
        if not hasattr(glue, "update_table"):
            raise CatalogError(
                f"Glue table {database}.{table_def.name} exists with columns {columns}, "
                f"expected {names_types(wanted['StorageDescriptor']['Columns'])}"
            )
        glue.update_table(DatabaseName=database, TableInput=wanted)
    return False


def _batches(items: Sequence[Any], size: int = MAX_PARTITIONS_PER_CALL) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def register_partitions(
    glue: Any, database: str, table_def: TableDef, location: str, partition_values: list[list[str]]
) -> int:
    """``batch_create_partition`` for every partition (≤ 100 per call); returns how many were created.

    Partitions that already exist (a re-run) are fine: their location is the same folder. Any other
    error in a batch's ``Errors`` raises :class:`CatalogError` naming the partition and Glue's reason.
    """
    created = 0
    unique = list(dict.fromkeys(tuple(v) for v in partition_values))
    for batch in _batches(unique):
        inputs = [
            {
                "Values": list(values),
                "StorageDescriptor": storage_descriptor(table_def, partition_location(location, table_def, values)),
            }
            for values in batch
        ]
        try:
            response = glue.batch_create_partition(
                DatabaseName=database, TableName=table_def.name, PartitionInputList=inputs
            )
        except ClientError as e:
            raise CatalogError(f"Glue table {database}.{table_def.name}: batch_create_partition failed: {e}") from e
        errors = response.get("Errors") or []
        failures = [err for err in errors if err.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if failures:
            first = failures[0]
            detail = first.get("ErrorDetail", {})
            raise CatalogError(
                f"Glue table {database}.{table_def.name}: partition {first.get('PartitionValues')} not registered: "
                f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
                + (f" (and {len(failures) - 1} more)" if len(failures) > 1 else "")
            )
        created += len(batch) - len(errors)
    return created


def unregister_partitions(glue: Any, database: str, table_def: TableDef, partition_values: list[list[str]]) -> int:
    """``batch_delete_partition`` (≤ 25 per call) for partitions a re-run emptied; returns how many were removed.

    Missing partitions are fine. A client without ``batch_delete_partition`` is left alone: a partition
    whose folder holds no file reads as zero rows.
    """
    if not partition_values or not hasattr(glue, "batch_delete_partition"):
        return 0
    removed = 0
    for batch in _batches(partition_values, MAX_DELETES_PER_CALL):
        try:
            response = glue.batch_delete_partition(
                DatabaseName=database,
                TableName=table_def.name,
                PartitionsToDelete=[{"Values": list(v)} for v in batch],
            )
        except ClientError as e:
            raise CatalogError(f"Glue table {database}.{table_def.name}: batch_delete_partition failed: {e}") from e
        errors = response.get("Errors") or []
        failures = [err for err in errors if err.get("ErrorDetail", {}).get("ErrorCode") != "EntityNotFoundException"]
        if failures:
            detail = failures[0].get("ErrorDetail", {})
            raise CatalogError(
                f"Glue table {database}.{table_def.name}: partition {failures[0].get('PartitionValues')} not removed: "
                f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}"
            )
        removed += len(batch) - len(errors)
    return removed


def get_all_partitions(glue: Any, database: str, table_name: str) -> list[dict[str, Any]]:
    """Every partition of a table (follows ``NextToken``)."""
    partitions: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"DatabaseName": database, "TableName": table_name}
    while True:
        response = glue.get_partitions(**kwargs)
        partitions.extend(response.get("Partitions", []))
        token = response.get("NextToken")
        if not token:
            return partitions
        kwargs["NextToken"] = token
