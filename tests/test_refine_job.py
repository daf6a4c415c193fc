"""The Glue refine job on local Spark, over real B3 data, run in-process (one SparkSession for the module).

The refined columns are checked against an independent pandas computation of the same definitions,
written here from the raw Parquet (not by calling the Spark code).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from datetime import date
from pathlib import Path

import boto3
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from refine_lake import archive_sessions, files_under, raw_path, read_raw_pandas, read_refined, write_raw

from bovespa_assets.glue import refine_job
from bovespa_assets.lake import Lake
from bovespa_assets.raw_table import RAW_SCHEMA
from bovespa_assets.refine import catalog, writer
from bovespa_assets.refine.tables import CARTEIRA, SETOR_DIARIO, TABLES, TIPO_DIARIO

FEB_MAR_2025 = [d for d in archive_sessions("IBOV") if date(2025, 2, 3) <= d <= date(2025, 3, 20)]
CONSECUTIVE = [date(2025, 1, 6), *FEB_MAR_2025]  # a gap (Jan 6 → Feb 3), then consecutive sessions
CARTEIRA_KEYS = ["indice", "data_pregao", "codigo"]
FLOAT_COLUMNS = {"participacao_pct", "participacao_anterior_pct", "variacao_participacao_pp",
                 "media_movel_5_participacao_pct", "participacao_total_pct"}


# --------------------------------------------------------------------------------- the reference


def expected_carteira(raw: pd.DataFrame) -> pd.DataFrame:
    """The refined rows by the definitions, in plain Python over the raw rows."""
    out = []
    for indice, rows in raw.groupby("indice"):
        sessions = sorted(rows["data_pregao"].unique())
        book = {day: {r["cod"]: r for r in part.to_dict("records")} for day, part in rows.groupby("data_pregao")}
        seen: Counter[str] = Counter()
        for i, day in enumerate(sessions):
            prev = sessions[i - 1] if i > 0 else None
            nxt = sessions[i + 1] if i + 1 < len(sessions) else None
            last5 = sessions[max(0, i - 4) : i + 1]
            for cod, r in book[day].items():
                seen[cod] += 1
                before = book[prev].get(cod) if prev is not None else None
                weights = [book[d][cod]["part"] for d in last5 if cod in book[d]]
                out.append({
                    "indice": indice, "data_pregao": day, "codigo": cod,
                    "acao": r["asset"], "tipo": r["type"].split()[0], "tipo_publicado": r["type"],
                    "setor": r["segment"], "participacao_pct": r["part"], "qtd_teorica": r["theorical_qty"],
                    "data_pregao_anterior": prev,
                    "dias_desde_pregao_anterior": (day - prev).days if prev is not None else None,
                    "participacao_anterior_pct": before["part"] if before else None,
                    "variacao_participacao_pp": r["part"] - before["part"] if before else None,
                    "qtd_teorica_anterior": before["theorical_qty"] if before else None,
                    "variacao_qtd_teorica": r["theorical_qty"] - before["theorical_qty"] if before else None,
                    "media_movel_5_participacao_pct": sum(weights) / len(weights),
                    "flag_entrada": prev is not None and before is None,
                    "flag_saida": nxt is not None and cod not in book[nxt],
                    "sessoes_na_carteira": seen[cod],
                    "fonte_sha256": r["source_sha256"],
                })
    return pd.DataFrame(out)


def expected_totals(raw: pd.DataFrame, by: str) -> pd.DataFrame:
    frame = raw.assign(setor=raw["segment"], tipo=raw["type"].str.split().str[0])
    return (
        frame.groupby(["indice", "data_pregao", by], dropna=False)
        .agg(participacao_total_pct=("part", "sum"), qtd_acoes=("cod", "size"),
             qtd_teorica_total=("theorical_qty", "sum"))
        .reset_index()
    )


def _py(value):
    """pandas cell → comparable Python value (NaN/NaT/None → None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    return value.item() if hasattr(value, "item") else value


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same keys, and every column equal (doubles within 1e-9, everything else exactly)."""
    assert sorted(actual.columns) == sorted(expected.columns)

    def index(frame):
        return {tuple(_py(r[k]) for k in keys): r for r in frame.to_dict("records")}

    got, want = index(actual), index(expected)
    assert len(got) == len(actual) and len(want) == len(expected)  # no duplicate keys
    assert got.keys() == want.keys()
    mismatches = []
    for key, row in want.items():
        for column, value in row.items():
            a, e = _py(got[key][column]), _py(value)
            same = (a is None and e is None) or (
                a is not None and e is not None
                and (math.isclose(a, e, rel_tol=0, abs_tol=1e-9) if column in FLOAT_COLUMNS else a == e)
            )
            if not same:
                mismatches.append((key, column, a, e))
    assert not mismatches, f"{len(mismatches)} mismatches, e.g. {mismatches[:5]}"


# ---------------------------------------------------------------------------------------- fixtures


class CountingGlue:
    """A Glue client that records the size of every batch_create_partition call."""

    def __init__(self, client):
        self.client = client
        self.create_batches: list[int] = []

    def batch_create_partition(self, **kwargs):
        self.create_batches.append(len(kwargs["PartitionInputList"]))
        return self.client.batch_create_partition(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture(scope="module")
def aws():
    """moto's in-process Glue for the whole module; ``refine_job`` gets it for ``--catalog glue``."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name, value in env.items():
            mp.setenv(name, value)
        glue = CountingGlue(boto3.client("glue", region_name="us-east-1"))
        real_client = refine_job.catalog_client
        mp.setattr(refine_job, "catalog_client", lambda args: glue if args.catalog == "glue" else real_client(args))
        yield glue


@pytest.fixture(scope="module")
def spark():
    return refine_job.build_spark()


def run_job(lake: Path, sessions, *extra: str) -> int:
    days = ",".join(d.isoformat() if isinstance(d, date) else d for d in sessions)
    # Glue's own arguments ride along, as on AWS: the job must ignore them.
    return refine_job.main(["--JOB_NAME", "bovespa-refine", "--job-bookmark-option", "job-bookmark-disable",
                            "--sessions", days, "--lake_uri", str(lake), *extra])


@dataclasses.dataclass
class Refined:
    lake: Path
    sessions: list[date]  # every session in raw (and refined)
    tables: dict[str, pd.DataFrame]  # the refined tables as first written, read back
    create_batches: list[int]  # sizes of the first run's batch_create_partition calls


@pytest.fixture(scope="module")
def refined(tmp_path_factory, spark, aws) -> Refined:
    """ONE lake for the module, refined in one run: real IBOV and IBXX sessions with everything to test.

    IBOV 2025-01-06 then every session 2025-02-03..2025-03-20 (consecutive), IBOV's JSON session with
    sectors (2022-12-08), and IBOV+IBXX on the same days (a file holds both indices' rows), plus IBXX
    sessions far apart. Tests that re-run the job on it leave it as they found it.
    """
    lake = tmp_path_factory.mktemp("refine") / "lake"
    both = [date(2024, 1, 31), date(2024, 2, 9), date(2024, 4, 26)]
    sessions = sorted({
        *write_raw(lake, "IBOV", [date(2022, 12, 8), *both, *CONSECUTIVE]),
        *write_raw(lake, "IBXX", [*both, date(2024, 9, 20), date(2025, 4, 28)]),
    })
    assert run_job(lake, sessions, "--catalog", "glue", "--JOB_RUN_ID", "jr_full") == 0
    return Refined(lake, sessions, snapshot(lake), list(aws.create_batches))


def snapshot(lake: Path) -> dict[str, pd.DataFrame]:
    return {t.name: read_refined(lake, t) for t in TABLES}


def assert_unchanged(lake: Path, before: dict[str, pd.DataFrame]) -> None:
    for name, frame in snapshot(lake).items():
        pd.testing.assert_frame_equal(frame, before[name], check_exact=True)


def data_files(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in (lake / "refined").rglob("*")
                  if p.is_file() and "_manifests" not in p.parts)


# ------------------------------------------------------------------------------------------- tests


def test_the_spark_reader_schema_is_the_raw_tables():
    from bovespa_assets.refine.carteira import RAW_SPARK_SCHEMA

    arrow_of = {"string": pa.string(), "double": pa.float64(), "bigint": pa.int64(),
                "timestamp": pa.timestamp("us", "UTC")}
    fields = [(f.name, f.dataType.simpleString()) for f in RAW_SPARK_SCHEMA.fields]
    assert fields[-2:] == [("indice", "string"), ("data_pregao", "date")]  # from the Hive path
    assert [(name, arrow_of[spark_type]) for name, spark_type in fields[:-2]] == [(f.name, f.type) for f in RAW_SCHEMA]


def test_refined_rows_equal_an_independent_pandas_computation(refined):
    raw = read_raw_pandas(refined.lake)
    actual = refined.tables[CARTEIRA.name]
    expected = expected_carteira(raw)
    assert len(actual) == len(raw) == len(expected)
    assert_same_rows(actual, expected, CARTEIRA_KEYS)

    # The data exercises every branch of the definitions.
    assert actual["flag_entrada"].sum() > 0 and actual["flag_saida"].sum() > 0
    firsts = actual[actual["data_pregao_anterior"].isna()].groupby("indice")["data_pregao"].unique()
    assert {i: list(d) for i, d in firsts.items()} == {"IBOV": [date(2022, 12, 8)], "IBXX": [date(2024, 1, 31)]}
    assert (actual["participacao_anterior_pct"].isna() & actual["data_pregao_anterior"].notna()).sum() > 0
    assert actual["setor"].notna().sum() > 0 and actual["setor"].isna().sum() > 0
    assert set(actual["tipo"]) >= {"ON", "PN", "UNT", "PNA", "PNB"}
    # Weight differences are exact decimals of the published values (3 places), not binary noise.
    diffs = actual["variacao_participacao_pp"].dropna()
    assert (diffs == diffs.round(3)).all()

    petr4 = actual[(actual.indice == "IBOV") & (actual.codigo == "PETR4")].set_index("data_pregao")
    assert petr4.loc[date(2025, 2, 3), "data_pregao_anterior"] == date(2025, 1, 6)
    assert petr4.loc[date(2025, 2, 3), "dias_desde_pregao_anterior"] == 28
    assert petr4.loc[date(2025, 3, 20), "sessoes_na_carteira"] == len(petr4)


def test_sector_and_share_class_totals_equal_pandas(refined):
    raw = read_raw_pandas(refined.lake)
    setor, tipo = refined.tables[SETOR_DIARIO.name], refined.tables[TIPO_DIARIO.name]
    assert_same_rows(setor, expected_totals(raw, "setor"), ["indice", "data_pregao", "setor"])
    assert_same_rows(tipo, expected_totals(raw, "tipo"), ["indice", "data_pregao", "tipo"])

    json_session = setor[(setor.indice == "IBOV") & (setor.data_pregao == date(2022, 12, 8))]
    assert json_session["setor"].notna().all() and len(json_session) > 10  # real sectors from B3's JSON
    csv_session = setor[(setor.indice == "IBOV") & (setor.data_pregao == date(2025, 2, 3))]
    assert csv_session["setor"].isna().all() and csv_session["qtd_acoes"].tolist() == [87]  # one null group
    for frame in (setor, tipo):
        weights = frame.groupby(["indice", "data_pregao"])["participacao_total_pct"].sum()
        assert ((weights - 100).abs() <= 0.01).all()


def test_layout_is_hive_partitions_with_one_file_each(refined):
    lake = refined.lake
    petr4 = lake / "refined/tb_carteira_refined/data_pregao=2025-02-03/codigo=PETR4/part-00000.parquet"
    assert petr4.is_file()
    table = pq.read_table(petr4)
    assert table.schema == writer.arrow_schema(CARTEIRA, with_partition_keys=False)  # keys only in the path
    assert table.column("indice").to_pylist() == ["IBOV"]

    for table_def in TABLES:
        root = lake / table_def.prefix
        files = [p for p in root.rglob("*") if p.is_file()]
        assert files and all(p.name == "part-00000.parquet" for p in files)  # no temp file left behind
        assert {len(p.relative_to(root).parts) for p in files} == {len(table_def.partition_keys) + 1}
        assert len({p.parent for p in files}) == len(files)  # one file per partition
        assert {p.relative_to(root).parts[0] for p in files} == {f"data_pregao={d}" for d in refined.sessions}

    # A ticker in two indices on the same session: one partition file holds both rows.
    shared = pq.read_table(lake / "refined/tb_carteira_refined/data_pregao=2024-01-31/codigo=PETR4/part-00000.parquet")
    assert shared.column("indice").to_pylist() == ["IBOV", "IBXX"]


def test_catalog_has_the_tables_and_exactly_the_written_partitions(refined, aws):
    lake = refined.lake
    assert aws.get_database(Name="workspace_db")["Database"]["Name"] == "workspace_db"
    batches = refined.create_batches
    assert batches and max(batches) <= 100
    registered_total = 0
    for table_def in TABLES:
        table = aws.get_table(DatabaseName="workspace_db", Name=table_def.name)["Table"]
        sd = table["StorageDescriptor"]
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert table["Parameters"]["classification"] == "parquet"
        assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == list(table_def.partition_keys)
        assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == list(table_def.columns)
        assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
        assert sd["OutputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
        assert sd["Location"] == str(lake / table_def.prefix)

        partitions = catalog.get_all_partitions(aws, "workspace_db", table_def.name)
        on_disk = {p.parent for p in (lake / table_def.prefix).rglob("part-00000.parquet")}
        registered = {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in partitions}
        assert len(registered) == len(partitions) == len(on_disk)
        assert {Path(location) for location in registered.values()} == on_disk
        names = [name for name, _ in table_def.partition_keys]
        for values, location in registered.items():
            folder = "/".join(f"{n}={v}" for n, v in zip(names, values, strict=True))
            assert location == str(lake / table_def.prefix / folder)
        assert {v[0] for v in registered} == {d.isoformat() for d in refined.sessions}
        registered_total += len(partitions)
    assert sum(batches) == registered_total


def test_manifest_records_what_the_run_wrote(refined):
    manifest = json.loads((refined.lake / "refined/_manifests/jr_full.json").read_text())
    assert manifest["job_run_id"] == "jr_full"
    assert manifest["sessions_requested"] == manifest["sessions_written"] == [d.isoformat() for d in refined.sessions]
    assert manifest["started_at"] < manifest["finished_at"]
    for table_def in TABLES:
        entry = manifest["tables"][table_def.name]
        assert entry["location"] == str(refined.lake / table_def.prefix)
        frame = refined.tables[table_def.name]
        rows = frame.groupby("data_pregao").size()
        assert {s: v["rows"] for s, v in entry["sessions"].items()} == {d.isoformat(): n for d, n in rows.items()}
        keys = [name for name, _ in table_def.partition_keys]
        parts = frame.drop_duplicates(keys).groupby("data_pregao").size()
        assert {s: v["partitions"] for s, v in entry["sessions"].items()} == {
            d.isoformat(): n for d, n in parts.items()
        }


def test_reruns_of_a_session_and_of_a_range_leave_the_same_rows(refined, tmp_path, capsys):
    from bovespa_assets.local.glue_catalog import LocalGlueCatalog

    lake, files_before = refined.lake, data_files(refined.lake)
    capsys.readouterr()
    # One session, registered in the local catalog this time.
    local_args = ("--catalog", "local", "--catalog_path", str(tmp_path / "catalog.sqlite"))
    assert run_job(lake, [date(2025, 2, 10)], *local_args, "--JOB_RUN_ID", "jr_one") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "succeeded"
    assert summary["sessions_written"] == ["2025-02-07", "2025-02-10"]  # the previous session's flag_saida
    assert summary["rows"][CARTEIRA.name] == 2 * 87 and summary["files_deleted"] == 0
    assert data_files(lake) == files_before
    assert_unchanged(lake, refined.tables)
    local = LocalGlueCatalog(tmp_path / "catalog.sqlite")
    partitions = catalog.get_all_partitions(local, "workspace_db", CARTEIRA.name)
    assert sorted(tuple(p["Values"]) for p in partitions) == sorted(
        (p.parent.parent.name.split("=")[1], p.parent.name.split("=")[1])
        for day in ("2025-02-07", "2025-02-10")
        for p in (lake / CARTEIRA.prefix / f"data_pregao={day}").rglob("part-00000.parquet")
    )
    assert partitions[0]["StorageDescriptor"]["Location"].startswith(str(lake / CARTEIRA.prefix) + "/data_pregao=")

    # A range.
    a_range = [d for d in CONSECUTIVE if date(2025, 2, 24) <= d <= date(2025, 3, 7)]
    assert run_job(lake, a_range, "--catalog", "glue") == 0
    assert data_files(lake) == files_before
    assert_unchanged(lake, refined.tables)


def test_a_ticker_gone_from_raw_loses_its_partition_on_rerun(refined, aws):
    lake = refined.lake
    last, previous = date(2025, 3, 20), date(2025, 3, 19)
    raw_file = raw_path(lake, "IBOV", last)
    original = raw_file.read_bytes()
    partition = lake / f"refined/tb_carteira_refined/data_pregao={last}/codigo=PETR4"

    def registered(day: date) -> bool:
        try:
            aws.get_partition(DatabaseName="workspace_db", TableName=CARTEIRA.name, PartitionValues=[str(day), "PETR4"])
            return True
        except ClientError as e:
            assert e.response["Error"]["Code"] == "EntityNotFoundException"
            return False

    try:
        table = pq.read_table(raw_file)
        pq.write_table(table.filter(pc.not_equal(table["cod"], "PETR4")), raw_file)
        assert run_job(lake, [last], "--catalog", "glue") == 0
        assert not partition.exists()
        after = read_refined(lake, CARTEIRA)
        assert len(after) == len(refined.tables[CARTEIRA.name]) - 1
        petr4 = after[(after.codigo == "PETR4") & (after.data_pregao == previous)].iloc[0]
        assert bool(petr4["flag_saida"]) is True  # its last session before leaving
        assert not registered(last) and registered(previous)
    finally:
        raw_file.write_bytes(original)
    assert run_job(lake, [last], "--catalog", "glue") == 0
    assert partition.is_dir() and registered(last)
    assert_unchanged(lake, refined.tables)


def test_a_corrupt_raw_file_fails_clearly_and_changes_nothing(refined, capsys):
    lake = refined.lake
    before = files_under(lake)
    bad = raw_path(lake, "IBOV", date(2025, 2, 12))
    original = bad.read_bytes()
    bad.write_bytes(b"this is not parquet" * 50)
    capsys.readouterr()
    try:
        code = run_job(lake, [date(2025, 3, 20)], "--catalog", "glue", "--JOB_RUN_ID", "jr_corrupt")
    finally:
        bad.write_bytes(original)
    out, err = capsys.readouterr()
    assert code != 0
    assert "refine job failed" in err and str(bad) in err and "not a Parquet file" in err, err
    assert json.loads(out.strip().splitlines()[-1])["status"] == "failed"
    assert files_under(lake) == before  # byte for byte, and no manifest for the failed run

    # A readable file that lacks a required column: the partition is named, nothing is written.
    table = pq.read_table(bad)
    pq.write_table(table.drop_columns(["theorical_qty"]), bad)
    try:
        code = run_job(lake, [date(2025, 2, 12)], "--catalog", "glue")
    finally:
        bad.write_bytes(original)
    err = capsys.readouterr().err
    assert code != 0 and f"{bad.parent}: rows with no ticker, name, type, weight or quantity" in err, err
    assert files_under(lake) == before


def test_bad_arguments_fail_before_spark_with_a_clear_message(tmp_path, capsys, monkeypatch):
    write_raw(tmp_path / "lake", "IBOV", [date(2025, 2, 3)])
    monkeypatch.setattr(refine_job, "build_spark", lambda: pytest.fail("Spark must not start"))

    def run(*argv):
        code = refine_job.main(list(argv))
        return code, capsys.readouterr().err

    code, err = run("--sessions", "2025-02-08", "--lake_uri", str(tmp_path / "lake"))
    assert code == 1 and "no raw partition for session 2025-02-08" in err and "raw/carteira" in err
    code, err = run("--sessions", "2025-02-30", "--lake_uri", str(tmp_path / "lake"))
    assert code == 2 and "2025-02-30" in err
    code, err = run("--sessions", "2025-02-03", "--lake_uri", str(tmp_path / "lake"), "--catalog", "local")
    assert code == 2 and "--catalog_path" in err
    code, err = run("--sessions", "2025-02-03", "--lake_uri", str(tmp_path / "nothing"))
    assert code == 1 and "indices in raw: none" in err
    assert not (tmp_path / "lake" / "refined").exists()


def test_register_partitions_batches_and_tolerates_reruns_only(aws):
    glue = aws.client
    catalog.ensure_database(glue, "batches_db")
    assert catalog.ensure_database(glue, "batches_db") is False
    assert catalog.ensure_table(glue, "batches_db", SETOR_DIARIO, "s3://bucket/lake/refined/tb_setor_diario")
    counting = CountingGlue(glue)
    values = [[f"20{y:02d}-01-{d:02d}"] for y in range(10, 19) for d in range(1, 29)]  # 252 distinct
    assert catalog.register_partitions(counting, "batches_db", SETOR_DIARIO, "s3://bucket/lake/refined/"
                                       "tb_setor_diario", values) == 252
    assert counting.create_batches == [100, 100, 52]
    assert catalog.register_partitions(counting, "batches_db", SETOR_DIARIO, "s3://x", values[:5]) == 0  # re-run
    got = catalog.get_all_partitions(glue, "batches_db", SETOR_DIARIO.name)
    assert len(got) == 252
    assert got[0]["StorageDescriptor"]["Location"].startswith("s3://bucket/lake/refined/tb_setor_diario/data_pregao=")
    with pytest.raises(catalog.CatalogError, match=r"batches_db\.tb_nope"):  # a call that fails outright
        catalog.register_partitions(glue, "batches_db", dataclasses.replace(SETOR_DIARIO, name="tb_nope"), "s3://x",
                                    values[:1])

    class Refusing:  # a batch answered with an error other than AlreadyExists
        def batch_create_partition(self, **kwargs):
            return {"Errors": [
                {"PartitionValues": ["2010-01-01"], "ErrorDetail": {"ErrorCode": "AlreadyExistsException"}},
                {"PartitionValues": ["2010-01-02"],
                 "ErrorDetail": {"ErrorCode": "InternalServiceException", "ErrorMessage": "try later"}},
            ]}

    with pytest.raises(catalog.CatalogError, match=r"2010-01-02.*InternalServiceException: try later"):
        catalog.register_partitions(Refusing(), "batches_db", SETOR_DIARIO, "s3://x", values[:2])


def test_the_writer_replaces_sessions_on_s3(refined, moto_endpoint):
    table = pa.Table.from_pandas(refined.tables[CARTEIRA.name], preserve_index=False)
    day = date(2025, 2, 10)
    session = table.filter(pc.equal(table["data_pregao"], pa.scalar(day, pa.date32())))
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="lake")
        lake = Lake("s3://lake/prefix", s3_endpoint_url=moto_endpoint)
        first = writer.write_partitioned(lake, CARTEIRA, session, [day.isoformat()])
        assert len(first.files) == session.num_rows == 87

        def keys():  # objects, not the folder markers pyarrow leaves when a folder empties
            listing = s3.list_objects_v2(Bucket="lake", MaxKeys=1000).get("Contents", [])
            return sorted(o["Key"] for o in listing if not o["Key"].endswith("/"))

        assert keys() == sorted(f"prefix/{f}" for f in first.files)
        second = writer.write_partitioned(lake, CARTEIRA, session.slice(1), [day.isoformat()])
        assert second.deleted == [first.files[0]] and second.deleted_partitions == [first.partitions[0]]
        assert keys() == sorted(f"prefix/{f}" for f in second.files)
        assert first.location == "s3://lake/prefix/refined/tb_carteira_refined"
        with pytest.raises(ValueError, match="sessions not being written"):
            writer.write_partitioned(lake, CARTEIRA, session, ["2025-02-11"])


def test_worker_processes_write_the_same_files_as_threads(refined, tmp_path, monkeypatch):
    """Large local writes go to worker processes; files, bytes read back and replace semantics match the threads'."""
    table = pa.Table.from_pandas(refined.tables[CARTEIRA.name], preserve_index=False)
    sessions = sorted({d.isoformat() for d in table.column("data_pregao").to_pylist()})
    threaded = writer.write_partitioned(Lake(str(tmp_path / "threads")), CARTEIRA, table, sessions)
    monkeypatch.setattr(writer, "PROCESS_POOL_MIN_FILES", 1)
    in_processes = writer.write_partitioned(Lake(str(tmp_path / "processes")), CARTEIRA, table, sessions)
    partitions = {(r["data_pregao"], r["codigo"]) for r in table.select(["data_pregao", "codigo"]).to_pylist()}
    assert in_processes.files == threaded.files and len(threaded.files) == len(partitions) > 3000
    assert in_processes.sessions == threaded.sessions
    for key in threaded.files[:: max(1, len(threaded.files) // 50)]:
        assert pq.read_table(tmp_path / "processes" / key).equals(pq.read_table(tmp_path / "threads" / key))
    # Replace: a second write of one session without its first ticker drops that ticker's file.
    first_day = table.filter(pc.equal(table["data_pregao"], pa.scalar(date.fromisoformat(sessions[0]))))
    first_day = first_day.sort_by([("codigo", "ascending")])
    again = writer.write_partitioned(Lake(str(tmp_path / "processes")), CARTEIRA, first_day.slice(1), [sessions[0]])
    gone = f"{CARTEIRA.prefix}/data_pregao={sessions[0]}/codigo={first_day['codigo'][0].as_py()}/part-00000.parquet"
    assert again.deleted == [gone] and not (tmp_path / "processes" / gone).exists()


def test_a_failing_write_worker_names_the_table_and_the_reason(refined, tmp_path, monkeypatch):
    table = pa.Table.from_pandas(refined.tables[CARTEIRA.name], preserve_index=False)
    sessions = sorted({d.isoformat() for d in table.column("data_pregao").to_pylist()})
    blocked = tmp_path / "lake"
    blocked.mkdir()
    (blocked / "refined").write_text("a file where the table's folder should be")
    monkeypatch.setattr(writer, "PROCESS_POOL_MIN_FILES", 1)
    with pytest.raises(OSError, match=r"write worker for tb_carteira_refined exited 1: \w+"):
        writer.write_partitioned(Lake(str(blocked)), CARTEIRA, table, sessions)
