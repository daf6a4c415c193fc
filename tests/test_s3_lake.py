"""The raw layer on the aws target: the same code writes to S3 through pyarrow.fs (moto, server mode)."""

import dataclasses
import subprocess
import sys
from datetime import date

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto.server import ThreadedMotoServer

from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.lake import RAW_CARTEIRA, Lake, partition_dir
from bovespa_assets.raw_table import snapshot_to_table
from bovespa_assets.runner import Runner
from bovespa_assets.settings import SAMPLE_ARCHIVE, Settings

BUCKET = "example-lake"  # moto's in-memory S3: no real bucket


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path, s3_endpoint):
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "BOVESPA_TARGET": "aws", "BOVESPA_LAKE": f"s3://{BUCKET}/lake",
        "BOVESPA_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def keys(s3) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_the_lake_writes_and_replaces_s3_objects(aws_env, s3_endpoint):
    lake = Lake(f"s3://{BUCKET}/lake", s3_endpoint_url=s3_endpoint)
    snapshot = PortfolioArchive(SAMPLE_ARCHIVE).find("IBOV", date(2025, 2, 3))
    key_dir = partition_dir(RAW_CARTEIRA, "IBOV", snapshot.data_pregao)
    written = lake.write_table(key_dir, snapshot_to_table(snapshot))
    lake.write_table(key_dir, snapshot_to_table(snapshot))  # a re-run replaces the object
    assert keys(aws_env) == [f"lake/{written}"]
    assert lake.url(written) == f"s3://{BUCKET}/lake/{written}"
    assert lake.read_table(written).num_rows == 87
    assert [info.path for info in lake.list_files("raw")] == [f"{BUCKET}/lake/{written}"]


def test_the_raw_asset_runs_on_the_aws_target(aws_env):
    settings = dataclasses.replace(Settings.from_env(), offline=True)
    assert settings.target == "aws"
    report = Runner(settings, echo=lambda _: None).backfill(["IBOV"], date(2025, 3, 17), date(2025, 3, 19))
    assert [o.status for o in report.outcomes] == ["loaded"] * 3
    assert keys(aws_env) == [
        f"lake/raw/carteira/indice=IBOV/data_pregao=2025-03-{day}/part-00000.parquet" for day in (17, 18, 19)
    ]
    assert {o.detail for o in report.outcomes} == {f"s3://{BUCKET}/{k}" for k in keys(aws_env)}
    body = aws_env.get_object(Bucket=BUCKET, Key=keys(aws_env)[0])["Body"].read()
    table = pq.read_table(pa.BufferReader(body))
    assert table.num_rows == 87 and set(table.column("source").to_pylist()) == {"archive-csv"}


def test_the_definitions_load_for_dagster_dev():
    """What `dagster dev` does first: load the code location named in workspace.yaml."""
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "bovespa_assets.definitions"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_charts_are_written_to_s3_in_one_put(aws_env, s3_endpoint):
    lake = Lake(f"s3://{BUCKET}/lake", s3_endpoint_url=s3_endpoint)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    assert lake.write_bytes("charts/mudancas_carteira.png", png) == f"s3://{BUCKET}/lake/charts/mudancas_carteira.png"
    lake.write_bytes("charts/mudancas_carteira.png", png)  # a refresh replaces it
    assert keys(aws_env) == ["lake/charts/mudancas_carteira.png"]
    assert aws_env.get_object(Bucket=BUCKET, Key="lake/charts/mudancas_carteira.png")["Body"].read() == png
