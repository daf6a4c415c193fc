"""The local stand-ins for AWS Glue: the Data Catalog (SQLite) and the job service (local processes).

The catalog is held to moto's Glue: the same sequence of boto3 calls runs against both and must give
the same answers. The job service runs tiny fake job scripts (tests/local_glue_fake_jobs.py), never Spark.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bovespa_assets.local.glue_catalog import LocalGlueCatalog
from bovespa_assets.local.glue_jobs import LocalGlueJobs, LocalJobDefinition
from bovespa_assets.local.job_runner import error_message

TESTS = Path(__file__).parent
DB = "workspace_db"
TABLE = "carteira_refinada"
FAKE_JOBS = LocalJobDefinition(
    module="local_glue_fake_jobs",
    default_arguments={"--mode": "ok", "--datalake": "/tmp/lake"},
    env={"PYTHONPATH": str(TESTS)},
)


# -- catalog -----------------------------------------------------------------------------------------


def table_input(name: str = TABLE, keys: tuple[tuple[str, str], ...] = (("data_pregao", "string"),
                                                                       ("ticker", "string"))) -> dict[str, Any]:
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        "StorageDescriptor": {
            "Columns": [{"Name": "nome_acao", "Type": "string"}, {"Name": "participacao", "Type": "double"}],
            "Location": f"s3://lake/refined/{name}/",
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        },
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in keys],
    }


def partition_input(day: str, ticker: str, table: str = TABLE) -> dict[str, Any]:
    return {
        "Values": [day, ticker],
        "StorageDescriptor": {"Location": f"s3://lake/refined/{table}/data_pregao={day}/ticker={ticker}/"},
    }


def code_of(call, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return caught.value.response["Error"]["Code"]


def values_and_locations(partitions: list[dict[str, Any]]) -> list[tuple[list[str], str]]:
    return [(p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions]


def exercise_catalog(glue) -> list[tuple[str, Any]]:
    """The catalog calls the project makes, in order; what each answered (the fields that matter)."""
    out: list[tuple[str, Any]] = []
    glue.create_database(DatabaseInput={"Name": DB, "Description": "B3 portfolios"})
    out.append(("create_database again", code_of(glue.create_database, DatabaseInput={"Name": DB})))
    database = glue.get_database(Name=DB)["Database"]
    out.append(("get_database", (database["Name"], database["Description"], database["CreateTime"].tzinfo is not None)))
    out.append(("get_database missing", code_of(glue.get_database, Name="nope_db")))
    out.append(("get_databases", [d["Name"] for d in glue.get_databases()["DatabaseList"]]))

    glue.create_table(DatabaseName=DB, TableInput=table_input())
    out.append(("create_table again", code_of(glue.create_table, DatabaseName=DB, TableInput=table_input())))
    out.append(("create_table missing db", code_of(
        glue.create_table, DatabaseName="nope_db", TableInput=table_input())))
    table = glue.get_table(DatabaseName=DB, Name=TABLE)["Table"]
    out.append(("get_table", {
        k: table[k] for k in ("Name", "DatabaseName", "TableType", "Parameters", "PartitionKeys", "StorageDescriptor")
    }))
    out.append(("get_table times", (table["CreateTime"].tzinfo is not None, table["VersionId"])))
    out.append(("get_table missing", code_of(glue.get_table, DatabaseName=DB, Name="nope")))
    out.append(("get_table missing db", code_of(glue.get_table, DatabaseName="nope_db", Name=TABLE)))
    glue.update_table(DatabaseName=DB, TableInput={**table_input(), "Parameters": {"classification": "parquet",
                                                                                  "updated": "yes"}})
    table = glue.get_table(DatabaseName=DB, Name=TABLE)["Table"]
    out.append(("update_table", (table["Parameters"], table["VersionId"], table["CreateTime"] <= table["UpdateTime"])))
    out.append(("update_table missing", code_of(glue.update_table, DatabaseName=DB, TableInput=table_input("nope"))))
    glue.create_table(DatabaseName=DB, TableInput=table_input("setores", (("data_pregao", "string"),)))
    out.append(("get_tables", sorted(t["Name"] for t in glue.get_tables(DatabaseName=DB)["TableList"])))
    out.append(("get_tables missing db", code_of(glue.get_tables, DatabaseName="nope_db")))

    first = [partition_input(day, t) for day in ("2025-02-03", "2025-02-04") for t in ("PETR4", "VALE3")]
    created = glue.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=first)
    out.append(("batch_create_partition", created.get("Errors", [])))
    again = [partition_input("2025-02-04", "VALE3"), partition_input("2025-02-05", "ITUB4")]
    created = glue.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=again)
    out.append(("batch_create_partition with a duplicate", created.get("Errors", [])))
    out.append(("batch_create_partition missing table", code_of(
        glue.batch_create_partition, DatabaseName=DB, TableName="nope", PartitionInputList=first)))

    partitions = glue.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"]
    out.append(("get_partitions", values_and_locations(partitions)))
    first_partition = partitions[0]
    out.append(("get_partitions shape", (
        first_partition["DatabaseName"], first_partition["TableName"],
        isinstance(first_partition["CreationTime"], datetime), first_partition["CreationTime"].tzinfo is not None,
    )))
    equal = glue.get_partitions(DatabaseName=DB, TableName=TABLE, Expression="data_pregao = '2025-02-04'")
    out.append(("get_partitions =", values_and_locations(equal["Partitions"])))
    ranged = glue.get_partitions(DatabaseName=DB, TableName=TABLE,
                                 Expression="data_pregao >= '2025-02-04' AND data_pregao <= '2025-02-28'")
    out.append(("get_partitions range", [p["Values"] for p in ranged["Partitions"]]))
    out.append(("get_partitions missing table", code_of(glue.get_partitions, DatabaseName=DB, TableName="nope")))
    out.append(("get_partitions not a key", code_of(
        glue.get_partitions, DatabaseName=DB, TableName=TABLE, Expression="nome_acao = 'x'")))

    got = glue.batch_get_partition(DatabaseName=DB, TableName=TABLE, PartitionsToGet=[
        {"Values": ["2025-02-05", "ITUB4"]}, {"Values": ["2030-01-01", "NONE3"]}, {"Values": ["2025-02-03", "PETR4"]},
    ])
    out.append(("batch_get_partition", sorted(p["Values"] for p in got["Partitions"])))
    glue.delete_partition(DatabaseName=DB, TableName=TABLE, PartitionValues=["2025-02-03", "PETR4"])
    out.append(("delete_partition again", code_of(
        glue.delete_partition, DatabaseName=DB, TableName=TABLE, PartitionValues=["2025-02-03", "PETR4"])))
    remaining = glue.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"]
    out.append(("after delete", [p["Values"] for p in remaining]))
    deleted = glue.batch_delete_partition(DatabaseName=DB, TableName=TABLE, PartitionsToDelete=[
        {"Values": ["2025-02-04", "VALE3"]}, {"Values": ["2030-01-01", "NONE3"]},
    ])
    out.append(("batch_delete_partition with a missing one", deleted.get("Errors", [])))
    out.append(("batch_delete_partition missing table", code_of(
        glue.batch_delete_partition, DatabaseName=DB, TableName="nope", PartitionsToDelete=[{"Values": ["x", "y"]}])))
    remaining = glue.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"]
    out.append(("after batch delete", [p["Values"] for p in remaining]))
    return out


EXPECTED_TRANSCRIPT = [
    ("create_database again", "AlreadyExistsException"),
    ("get_database", (DB, "B3 portfolios", True)),
    ("get_database missing", "EntityNotFoundException"),
    ("get_databases", [DB]),
    ("create_table again", "AlreadyExistsException"),
    ("create_table missing db", "EntityNotFoundException"),
    ("get_table", {
        "Name": TABLE,
        "DatabaseName": DB,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": table_input()["Parameters"],
        "PartitionKeys": table_input()["PartitionKeys"],
        "StorageDescriptor": table_input()["StorageDescriptor"],
    }),
    ("get_table times", (True, "1")),
    ("get_table missing", "EntityNotFoundException"),
    ("get_table missing db", "EntityNotFoundException"),
    ("update_table", ({"classification": "parquet", "updated": "yes"}, "2", True)),
    ("update_table missing", "EntityNotFoundException"),
    ("get_tables", [TABLE, "setores"]),
    ("get_tables missing db", "EntityNotFoundException"),
    ("batch_create_partition", []),
    ("batch_create_partition with a duplicate", [{
        "PartitionValues": ["2025-02-04", "VALE3"],
        "ErrorDetail": {"ErrorCode": "AlreadyExistsException", "ErrorMessage": "Partition already exists."},
    }]),
    ("batch_create_partition missing table", "EntityNotFoundException"),
    ("get_partitions", values_and_locations(
        [partition_input(d, t) for d in ("2025-02-03", "2025-02-04") for t in ("PETR4", "VALE3")]
        + [partition_input("2025-02-05", "ITUB4")]
    )),
    ("get_partitions shape", (DB, TABLE, True, True)),
    ("get_partitions =", values_and_locations([partition_input("2025-02-04", "PETR4"),
                                               partition_input("2025-02-04", "VALE3")])),
    ("get_partitions range", [["2025-02-04", "PETR4"], ["2025-02-04", "VALE3"], ["2025-02-05", "ITUB4"]]),
    ("get_partitions missing table", "EntityNotFoundException"),
    ("get_partitions not a key", "InvalidInputException"),
    ("batch_get_partition", [["2025-02-03", "PETR4"], ["2025-02-05", "ITUB4"]]),
    ("delete_partition again", "EntityNotFoundException"),
    ("after delete", [["2025-02-03", "VALE3"], ["2025-02-04", "PETR4"], ["2025-02-04", "VALE3"],
                      ["2025-02-05", "ITUB4"]]),
    ("batch_delete_partition with a missing one", [{
        "PartitionValues": ["2030-01-01", "NONE3"],
        "ErrorDetail": {"ErrorCode": "EntityNotFoundException", "ErrorMessage": "Partition not found"},
    }]),
    ("batch_delete_partition missing table", "EntityNotFoundException"),
    ("after batch delete", [["2025-02-03", "VALE3"], ["2025-02-04", "PETR4"], ["2025-02-05", "ITUB4"]]),
]


@pytest.fixture
def moto_glue():
    with mock_aws():
        yield boto3.client("glue", region_name="us-east-1")


@pytest.fixture
def catalog(tmp_path: Path) -> LocalGlueCatalog:
    return LocalGlueCatalog(tmp_path / "nested" / "catalog.sqlite")


@pytest.fixture(params=["moto", "local"])
def glue(request, tmp_path: Path):
    if request.param == "moto":
        with mock_aws():
            yield boto3.client("glue", region_name="us-east-1")
    else:
        yield LocalGlueCatalog(tmp_path / "catalog.sqlite")


def test_catalog_answers_the_same_glue_calls_as_moto(glue):
    assert exercise_catalog(glue) == EXPECTED_TRANSCRIPT


@pytest.fixture
def refined(catalog: LocalGlueCatalog) -> LocalGlueCatalog:
    catalog.create_database(DatabaseInput={"Name": DB})
    catalog.create_table(DatabaseName=DB, TableInput=table_input())
    return catalog


def test_batch_create_partition_limit_is_enforced_locally_not_by_moto(refined, moto_glue):
    too_many = [partition_input(f"2025-01-{i:03d}", "PETR4") for i in range(101)]
    with pytest.raises(ClientError) as caught:
        refined.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=too_many)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.operation_name == "BatchCreatePartition"
    assert refined.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"] == []  # nothing half-done
    assert refined.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=too_many[:100]) \
        ["Errors"] == []

    # moto 5.2.5 does not enforce Glue's limit: it creates all 101. Real Glue refuses, like the local catalog.
    moto_glue.create_database(DatabaseInput={"Name": DB})
    moto_glue.create_table(DatabaseName=DB, TableInput=table_input())
    moto_glue.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=too_many)
    assert len(moto_glue.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"]) == 101
    # Nor does it page get_partitions: MaxResults is ignored and no NextToken comes back.
    page = moto_glue.get_partitions(DatabaseName=DB, TableName=TABLE, MaxResults=10)
    assert len(page["Partitions"]) == 101 and "NextToken" not in page


def test_batch_delete_partition_limit_is_25_like_glue(refined):
    partitions = [partition_input("2025-02-03", f"T{i:02d}") for i in range(26)]
    refined.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=partitions)
    to_delete = [{"Values": p["Values"]} for p in partitions]
    assert code_of(refined.batch_delete_partition, DatabaseName=DB, TableName=TABLE,
                   PartitionsToDelete=to_delete) == "ValidationException"
    assert refined.batch_delete_partition(DatabaseName=DB, TableName=TABLE, PartitionsToDelete=to_delete[:25]) \
        ["Errors"] == []
    left = refined.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"]
    assert [p["Values"] for p in left] == [["2025-02-03", "T25"]]


def test_partition_values_must_match_the_partition_keys(refined):
    bad = [partition_input("2025-02-03", "PETR4"), {"Values": ["2025-02-03"], "StorageDescriptor": {"Location": "x"}}]
    assert code_of(refined.batch_create_partition, DatabaseName=DB, TableName=TABLE,
                   PartitionInputList=bad) == "InvalidInputException"
    assert refined.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"] == []


def test_get_partitions_pages_in_creation_order(refined):
    days = [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]  # 336 sessions
    batches = [days[i:i + 100] for i in range(0, len(days), 100)]
    for batch in reversed(batches):  # created newest batch first: creation order is not value order
        refined.batch_create_partition(DatabaseName=DB, TableName=TABLE,
                                       PartitionInputList=[partition_input(d, "PETR4") for d in reversed(batch)])
    expected = [[d, "PETR4"] for batch in reversed(batches) for d in batch]  # by creation, then values

    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = refined.get_partitions(DatabaseName=DB, TableName=TABLE, MaxResults=100, **kwargs)
        pages.append([p["Values"] for p in page["Partitions"]])
        token = page.get("NextToken")
        if token is None:
            break
    assert [len(p) for p in pages] == [100, 100, 100, 36]
    assert [v for page in pages for v in page] == expected

    everything = refined.get_partitions(DatabaseName=DB, TableName=TABLE)
    assert [p["Values"] for p in everything["Partitions"]] == expected and "NextToken" not in everything

    march = refined.get_partitions(DatabaseName=DB, TableName=TABLE, MaxResults=10,
                                   Expression="data_pregao >= '2024-03-01' AND data_pregao < '2024-04-01'")
    rest = refined.get_partitions(DatabaseName=DB, TableName=TABLE, MaxResults=100, NextToken=march["NextToken"],
                                  Expression="data_pregao >= '2024-03-01' AND data_pregao < '2024-04-01'")
    march_days = [p["Values"][0] for p in march["Partitions"] + rest["Partitions"]]
    assert march_days == [f"2024-03-{d:02d}" for d in range(1, 29)]

    assert code_of(refined.get_partitions, DatabaseName=DB, TableName=TABLE, MaxResults=1001) == "ValidationException"
    assert code_of(refined.get_partitions, DatabaseName=DB, TableName=TABLE, NextToken="garbage!") \
        == "InvalidInputException"


def test_get_partitions_default_page_is_1000(refined):
    for start in range(0, 1001, 100):
        refined.batch_create_partition(DatabaseName=DB, TableName=TABLE, PartitionInputList=[
            partition_input("2025-02-03", f"T{i:04d}") for i in range(start, min(start + 100, 1001))
        ])
    first = refined.get_partitions(DatabaseName=DB, TableName=TABLE)
    assert len(first["Partitions"]) == 1000
    last = refined.get_partitions(DatabaseName=DB, TableName=TABLE, NextToken=first["NextToken"])
    assert [p["Values"] for p in last["Partitions"]] == [["2025-02-03", "T1000"]] and "NextToken" not in last


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("data_pregao = '2025-02-03'", [("2025-02-03", "PETR4"), ("2025-02-03", "VALE3")]),
        ("data_pregao >= '2025-02-01' AND data_pregao <= '2025-02-28'",
         [("2025-02-03", "PETR4"), ("2025-02-03", "VALE3"), ("2025-02-04", "PETR4")]),
        ("  data_pregao>'2025-02-03'and ticker <> 'VALE3' ", [("2025-02-04", "PETR4")]),
        ("data_pregao < '2025-02-01'", [("2025-01-31", "O'NEIL3")]),
        ("ticker = 'O''NEIL3'", [("2025-01-31", "O'NEIL3")]),
        ("ticker != 'PETR4' AND data_pregao = '2025-02-03'", [("2025-02-03", "VALE3")]),
        ("DATA_PREGAO = '2025-02-04'", [("2025-02-04", "PETR4")]),
        ("", None),  # no filter
    ],
)
def test_get_partitions_expressions(refined, expression, expected):
    rows = [("2025-02-03", "PETR4"), ("2025-02-03", "VALE3"), ("2025-02-04", "PETR4"), ("2025-01-31", "O'NEIL3")]
    refined.batch_create_partition(DatabaseName=DB, TableName=TABLE,
                                   PartitionInputList=[partition_input(d, t) for d, t in rows])
    got = refined.get_partitions(DatabaseName=DB, TableName=TABLE, Expression=expression)["Partitions"]
    assert sorted(tuple(p["Values"]) for p in got) == sorted(expected if expected is not None else rows)


def test_numeric_partition_keys_compare_as_numbers(catalog):
    catalog.create_database(DatabaseInput={"Name": DB})
    catalog.create_table(DatabaseName=DB, TableInput=table_input("por_ano", (("ano", "int"),)))
    catalog.batch_create_partition(DatabaseName=DB, TableName="por_ano", PartitionInputList=[
        {"Values": [y], "StorageDescriptor": {"Location": f"/lake/ano={y}"}} for y in ("9", "10", "2024")
    ])
    got = catalog.get_partitions(DatabaseName=DB, TableName="por_ano", Expression="ano >= 10")["Partitions"]
    assert [p["Values"] for p in got] == [["10"], ["2024"]]  # as strings, "9" > "10"


@pytest.mark.parametrize("expression", [
    "data_pregao = '2025-02-03' OR data_pregao = '2025-02-04'",
    "data_pregao LIKE '2025-02%'",
    "data_pregao IN ('2025-02-03')",
    "data_pregao BETWEEN '2025-02-01' AND '2025-02-28'",
    "(data_pregao = '2025-02-03')",
    "nome_acao = 'x'",
    "data_pregao = '2025-02-03' AND",
    "data_pregao = 2025-02-03",
    "garbage (((",
])
def test_unsupported_expressions_are_refused(refined, expression):
    assert code_of(refined.get_partitions, DatabaseName=DB, TableName=TABLE, Expression=expression) \
        == "InvalidInputException"


def test_catalog_persists_across_instances(tmp_path: Path):
    path = tmp_path / "a" / "b" / "catalog.sqlite"
    first = LocalGlueCatalog(path)
    first.create_database(DatabaseInput={"Name": DB})
    first.create_table(DatabaseName=DB, TableInput=table_input())
    first.batch_create_partition(DatabaseName=DB, TableName=TABLE,
                                 PartitionInputList=[partition_input("2025-02-03", "PETR4")])
    second = LocalGlueCatalog(path)
    partition = second.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"][0]
    assert partition["Values"] == ["2025-02-03", "PETR4"]
    assert partition["StorageDescriptor"]["Location"].endswith("data_pregao=2025-02-03/ticker=PETR4/")
    assert second.get_partition(DatabaseName=DB, TableName=TABLE, PartitionValues=["2025-02-03", "PETR4"]) \
        ["Partition"]["CreationTime"] == partition["CreationTime"]
    assert second.get_table(DatabaseName=DB, Name=TABLE)["Table"]["PartitionKeys"] == table_input()["PartitionKeys"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_names_are_case_insensitive_like_glue(refined):
    assert refined.get_database(Name=DB.upper())["Database"]["Name"] == DB
    assert refined.get_table(DatabaseName="Workspace_DB", Name=TABLE.upper())["Table"]["Name"] == TABLE
    assert code_of(refined.create_database, DatabaseInput={"Name": "WORKSPACE_DB"}) == "AlreadyExistsException"


_CATALOG_WRITER = """
import json, sys
from bovespa_assets.local.glue_catalog import LocalGlueCatalog
catalog = LocalGlueCatalog(sys.argv[1])
worker, errors = sys.argv[2], 0
for batch in range(15):
    mine = [{"Values": [f"2025-{batch + 1:02d}-01", f"{worker}{i:02d}"], "StorageDescriptor": {"Location": "x"}}
            for i in range(25)]
    shared = [{"Values": [f"2025-{batch + 1:02d}-01", f"SHARED{i:02d}"], "StorageDescriptor": {"Location": "x"}}
              for i in range(5)]
    errors += len(catalog.batch_create_partition(
        DatabaseName="workspace_db", TableName="carteira_refinada", PartitionInputList=mine + shared)["Errors"])
    catalog.get_partitions(DatabaseName="workspace_db", TableName="carteira_refinada",
                           Expression=f"data_pregao = '2025-{batch + 1:02d}-01'")
print(json.dumps({"errors": errors}))
"""


def test_two_processes_write_concurrently(refined):
    writers = [
        subprocess.Popen([sys.executable, "-c", _CATALOG_WRITER, str(refined.path), name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("A", "B")
    ]
    results = []
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        results.append(json.loads(out))
    # Each shared partition was created once: the other writer got AlreadyExists for it, exactly as in Glue.
    assert sum(r["errors"] for r in results) == 15 * 5
    partitions = refined.get_partitions(DatabaseName=DB, TableName=TABLE)["Partitions"]
    assert len(partitions) == 15 * (25 + 25 + 5)
    assert len({tuple(p["Values"]) for p in partitions}) == len(partitions)
    with sqlite3.connect(refined.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- job service -------------------------------------------------------------------------------------


@pytest.fixture
def jobs(tmp_path: Path):
    service = LocalGlueJobs(tmp_path / "home", {"refine": FAKE_JOBS}, max_concurrent_runs=1)
    yield service
    stop_everything(service)


def stop_everything(service: LocalGlueJobs) -> None:
    """End the runner process groups these tests started (runner + job script), by id."""
    for path in service.runs_root.glob("*/jr_*.json"):
        record = json.loads(path.read_text())
        pid = record["_local"].get("pid")
        if pid and record["JobRunState"] not in ("SUCCEEDED", "FAILED", "STOPPED"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    for runner in service._runners.values():
        with contextlib.suppress(Exception):
            runner.wait(timeout=5)


def record_of(service: LocalGlueJobs, job: str, run_id: str) -> dict[str, Any]:
    return json.loads((service.runs_root / job / f"{run_id}.json").read_text())


def wait_for_state(service: LocalGlueJobs, run_id: str, state: str, timeout_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run = service.get_job_run(JobName="refine", RunId=run_id)["JobRun"]
        if run["JobRunState"] == state:
            return run
        assert time.monotonic() < deadline, f"{run_id} still {run['JobRunState']}, expected {state}"
        time.sleep(0.05)


def test_job_run_succeeds_with_glue_shape(jobs):
    before = datetime.now().astimezone()
    run_id = jobs.start_job_run(JobName="refine", Arguments={"--mode": "sleep", "--seconds": "1"})["JobRunId"]
    assert run_id.startswith("jr_") and len(run_id) == 3 + 64
    running = wait_for_state(jobs, run_id, "RUNNING")
    assert "CompletedOn" not in running and "ErrorMessage" not in running
    final = jobs.wait("refine", run_id, timeout_s=10)
    assert final["JobRunState"] == "SUCCEEDED"
    assert final["Id"] == run_id and final["JobName"] == "refine" and final["Attempt"] == 0
    assert before <= final["StartedOn"] <= final["CompletedOn"] <= final["LastModifiedOn"]
    assert all(final[k].tzinfo is not None for k in ("StartedOn", "CompletedOn", "LastModifiedOn"))
    assert isinstance(final["ExecutionTime"], int) and 0 <= final["ExecutionTime"] <= 5
    assert "ErrorMessage" not in final
    log = Path(final["LogPath"]).read_text()
    assert "fake job: sleeping" in log and "exited with status 0" in log


def test_failing_job_reports_its_error(jobs):
    run_id = jobs.start_job_run(JobName="refine", Arguments={"--mode": "fail"})["JobRunId"]
    final = jobs.wait("refine", run_id, timeout_s=10)
    assert final["JobRunState"] == "FAILED"
    assert final["ErrorMessage"] == "ValueError: refined partition 2025-02-03 has no rows"
    assert "ShutdownHookManager" in Path(final["LogPath"]).read_text()  # the whole stderr is in the log

    run_id = jobs.start_job_run(JobName="refine", Arguments={"--mode": "exit"})["JobRunId"]
    final = jobs.wait("refine", run_id, timeout_s=10)
    assert (final["JobRunState"], final["ErrorMessage"]) == ("FAILED", "no such index: XYZW")


def test_missing_job_module_fails_the_run(tmp_path: Path):
    service = LocalGlueJobs(tmp_path, {"ghost": LocalJobDefinition(module="no_such_module_anywhere")})
    run_id = service.start_job_run(JobName="ghost")["JobRunId"]
    final = service.wait("ghost", run_id, timeout_s=10)
    assert final["JobRunState"] == "FAILED" and "No module named no_such_module_anywhere" in final["ErrorMessage"]


def test_error_message_prefers_the_exception_line():
    spark_like = [
        "25/02/03 10:00:00 WARN Utils: noise",
        "Traceback (most recent call last):",
        '  File "job.py", line 3, in <module>',
        "    main()",
        "pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: /lake/raw.",
        "",
        "25/02/03 10:00:01 INFO ShutdownHookManager: Shutdown hook called",
        "25/02/03 10:00:01 INFO ShutdownHookManager: Deleting directory /tmp/spark-1",
    ]
    assert error_message(spark_like, 1) == (
        "pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: /lake/raw."
    )
    assert error_message(["x" * 5000], 1) == "x" * 999 + "…"
    assert error_message([], -9) == "job process killed by signal SIGKILL"
    assert error_message(["", "  "], 2) == "job process exited with status 2"


def test_arguments_are_merged_and_passed_glue_style(jobs, tmp_path: Path):
    out = tmp_path / "argv.json"
    arguments = {"--mode": "ok", "--out": str(out), "--data_pregao": "2025-02-03"}
    run_id = jobs.start_job_run(JobName="refine", Arguments=arguments)["JobRunId"]
    final = jobs.wait("refine", run_id, timeout_s=10)
    assert final["JobRunState"] == "SUCCEEDED"
    assert final["Arguments"] == arguments  # as Glue: the run's own arguments, not the job's defaults
    argv = json.loads(out.read_text())["argv"]
    passed = dict(zip(argv[::2], argv[1::2], strict=True))
    assert passed == {
        "--mode": "ok",  # the run's value wins over the default
        "--datalake": "/tmp/lake",  # a default argument
        "--out": str(out),
        "--data_pregao": "2025-02-03",
        "--JOB_NAME": "refine",
        "--JOB_RUN_ID": run_id,
    }


def test_concurrent_runs_limit_and_stop(jobs):
    first = jobs.start_job_run(JobName="refine", Arguments={"--mode": "sleep"})["JobRunId"]
    assert code_of(jobs.start_job_run, JobName="refine") == "ConcurrentRunsExceededException"

    two = LocalGlueJobs(jobs.home, jobs.jobs, max_concurrent_runs=2)
    second = two.start_job_run(JobName="refine", Arguments={"--mode": "sleep"})["JobRunId"]
    with pytest.raises(ClientError) as caught:
        two.start_job_run(JobName="refine")
    assert caught.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
    assert caught.value.operation_name == "StartJobRun"

    wait_for_state(jobs, first, "RUNNING")
    with pytest.raises(TimeoutError, match=first):
        jobs.wait("refine", first, timeout_s=0.2, poll_s=0.05)

    stopped = two.batch_stop_job_run(JobName="refine", JobRunIds=[first, second, "jr_" + "0" * 64])
    assert [s["JobRunId"] for s in stopped["SuccessfulSubmissions"]] == [first, second]
    assert [e["ErrorDetail"]["ErrorCode"] for e in stopped["Errors"]] == ["EntityNotFoundException"]
    assert two.wait("refine", first, timeout_s=10)["JobRunState"] == "STOPPED"
    assert two.wait("refine", second, timeout_s=10)["JobRunState"] == "STOPPED"
    third = jobs.start_job_run(JobName="refine")["JobRunId"]  # room again
    assert jobs.wait("refine", third, timeout_s=10)["JobRunState"] == "SUCCEEDED"


def test_unknown_job_and_run(jobs):
    assert code_of(jobs.start_job_run, JobName="nope") == "EntityNotFoundException"
    assert code_of(jobs.get_job_runs, JobName="nope") == "EntityNotFoundException"
    assert code_of(jobs.get_job_run, JobName="refine", RunId="jr_" + "a" * 64) == "EntityNotFoundException"
    assert code_of(jobs.get_job_run, JobName="refine", RunId="../../etc/passwd") == "EntityNotFoundException"
    assert jobs.get_job_runs(JobName="refine")["JobRuns"] == []


def test_get_job_runs_newest_first_with_pages_and_restart(tmp_path: Path):
    home = tmp_path / "home"
    service = LocalGlueJobs(home, {"refine": FAKE_JOBS}, max_concurrent_runs=3)
    try:
        run_ids = [service.start_job_run(JobName="refine")["JobRunId"] for _ in range(3)]
        for run_id in run_ids:
            assert service.wait("refine", run_id, timeout_s=10)["JobRunState"] == "SUCCEEDED"
    finally:
        stop_everything(service)

    restarted = LocalGlueJobs(home, {"refine": FAKE_JOBS})  # a new process would see the same
    page = restarted.get_job_runs(JobName="refine", MaxResults=2)
    assert [r["Id"] for r in page["JobRuns"]] == run_ids[::-1][:2]
    rest = restarted.get_job_runs(JobName="refine", MaxResults=2, NextToken=page["NextToken"])
    assert [r["Id"] for r in rest["JobRuns"]] == run_ids[:1] and "NextToken" not in rest
    everything = restarted.get_job_runs(JobName="refine")["JobRuns"]
    assert [r["Id"] for r in everything] == run_ids[::-1]
    assert [r["StartedOn"] for r in everything] == sorted((r["StartedOn"] for r in everything), reverse=True)
    assert restarted.get_job_run(JobName="refine", RunId=run_ids[0])["JobRun"] == everything[-1]
    assert code_of(restarted.get_job_runs, JobName="refine", MaxResults=201) == "ValidationException"


def test_killed_runner_is_reported_failed(jobs):
    run_id = jobs.start_job_run(JobName="refine", Arguments={"--mode": "sleep"})["JobRunId"]
    wait_for_state(jobs, run_id, "RUNNING")
    pid = record_of(jobs, "refine", run_id)["_local"]["pid"]
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    # Another reader (no handle on the runner; it is a zombie until this process reaps it) sees it dead.
    other = LocalGlueJobs(jobs.home, jobs.jobs)
    run = other.get_job_run(JobName="refine", RunId=run_id)["JobRun"]
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == f"local job process {pid} exited without a result"
    assert "CompletedOn" in run
    assert jobs.get_job_run(JobName="refine", RunId=run_id)["JobRun"]["JobRunState"] == "FAILED"
    with contextlib.suppress(ProcessLookupError):  # the sleeping script got SIGTERM with its runner (Linux)
        os.killpg(pid, signal.SIGKILL)
    jobs.start_job_run(JobName="refine")  # the dead run no longer counts against the limit


def test_runs_outlive_the_process_that_started_them(tmp_path: Path):
    home = tmp_path / "home"
    starter = (
        "import sys\n"
        "from bovespa_assets.local.glue_jobs import LocalGlueJobs, LocalJobDefinition\n"
        f"jobs = LocalGlueJobs({str(home)!r}, {{'refine': LocalJobDefinition("
        f"module='local_glue_fake_jobs', env={{'PYTHONPATH': {str(TESTS)!r}}})}})\n"
        "print(jobs.start_job_run(JobName='refine', Arguments={'--mode': 'sleep', '--seconds': '0.5'})['JobRunId'])\n"
    )
    done = subprocess.run([sys.executable, "-c", starter], capture_output=True, text=True, timeout=30, check=True)
    run_id = done.stdout.strip()
    service = LocalGlueJobs(home, {"refine": FAKE_JOBS})
    try:
        assert service.wait("refine", run_id, timeout_s=10)["JobRunState"] == "SUCCEEDED"
    finally:
        stop_everything(service)


@pytest.mark.parametrize("service", ["local", "moto"])
def test_a_job_that_does_not_exist_is_reported_and_does_not_hide_the_others(service, tmp_path):
    """The Glue-run sensors poll every refine job; one not deployed (yet) is named, the others still observed."""
    from bovespa_assets.observe import RunCursor, finished_runs

    with contextlib.ExitStack() as stack:
        if service == "local":
            jobs = LocalGlueJobs(tmp_path / "glue", {"present": LocalJobDefinition(module="json.tool")})
        else:
            stack.enter_context(mock_aws())
            jobs = boto3.client("glue", region_name="us-east-1")
            jobs.create_job(Name="present", Role="arn:aws:iam::123456789012:role/r", Command={"Name": "glueetl"})
        missing: list[str] = []
        assert finished_runs(jobs, ["absent", "present"], RunCursor(), on_missing_job=missing.append) == []
        assert missing == ["absent"]
        with pytest.raises(ClientError, match="absent"):
            finished_runs(jobs, ["absent"], RunCursor())
