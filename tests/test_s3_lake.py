"""The aws target against moto in server mode: the raw layer writes to S3 through pyarrow.fs, and the whole
event path runs as far as moto allows (S3 notification → SQS → Lambda handler → Glue run → sensors)."""

import dataclasses
import json
import subprocess
import sys
from datetime import date
from urllib.parse import unquote_plus

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from cfn_template import Resolver, load
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetMaterialization,
    SensorResult,
    SkipReason,
    build_sensor_context,
)
from lambda_events import sqs_event

from bovespa_assets import lambda_handler
from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.glue import refine_job
from bovespa_assets.lake import RAW_CARTEIRA, Lake, partition_dir
from bovespa_assets.observe import JOB_CHECK, refined_key
from bovespa_assets.raw_table import snapshot_to_table
from bovespa_assets.refine.tables import CARTEIRA, DATABASE
from bovespa_assets.refine.writer import WriteResult
from bovespa_assets.runner import Runner, dagster_instance
from bovespa_assets.settings import SAMPLE_ARCHIVE, Settings

BUCKET = "example-lake"  # moto's in-memory S3: no real bucket


@pytest.fixture
def aws_env(monkeypatch, tmp_path, moto_endpoint):
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": moto_endpoint,
        "BOVESPA_TARGET": "aws", "BOVESPA_LAKE": f"s3://{BUCKET}/lake",
        "BOVESPA_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def keys(s3) -> list[str]:
    return sorted(item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_the_lake_writes_and_replaces_s3_objects(aws_env, moto_endpoint):
    lake = Lake(f"s3://{BUCKET}/lake", s3_endpoint_url=moto_endpoint)
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


# ------------------------------------------------------------------------------------------------------------
# the whole aws target, as far as moto goes


def tick(defs, name: str, instance, cursor: str | None):
    context = build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources)
    return defs.resolve_sensor_def(name)(context)


@pytest.fixture
def glue_runs_progress_on_polls(moto_endpoint):
    """moto's Glue runs otherwise answer SUCCEEDED at once; with this, each get_job_runs poll moves a run one
    step, STARTING → RUNNING → SUCCEEDED, as real runs move over time."""
    api = f"{moto_endpoint}/moto-api/state-manager"
    transition = {"model_name": "glue::job_run", "transition": {"progression": "manual", "times": 1}}
    requests.post(f"{api}/set-transition", data=json.dumps(transition), timeout=10).raise_for_status()
    yield
    requests.post(f"{api}/unset-transition", data=json.dumps({"model_name": "glue::job_run"}), timeout=10)


def stand_in_for_the_glue_script(lake: Lake, glue, run_id: str, sessions: list[str]) -> dict:
    """What the Glue job does after computing, done here because moto does not execute Glue scripts.

    The refined rows cannot be computed without Spark on S3, so this registers, with the job's own functions
    (refine_job.register: the real get/create database and table and batch_create_partition calls against
    moto's Glue), the (date, ticker) partitions of tb_carteira_refined that the real raw objects imply, and
    writes the job's manifest for them (refine_job.build_manifest/write_manifest). No refined Parquet is
    written; the local target's tests (test_refine_flow.py, test_refine_job.py) run the script for real.
    """
    result = WriteResult(table=CARTEIRA, location=lake.url(CARTEIRA.prefix))
    for session in sessions:
        [raw] = [i.path for i in lake.list_files(RAW_CARTEIRA) if f"data_pregao={session}/" in i.path]
        tickers = sorted(pq.read_table(raw, filesystem=lake.filesystem, columns=["cod"]).column("cod").to_pylist())
        result.partitions.extend([session, ticker] for ticker in tickers)
        result.sessions[session] = {"rows": len(tickers), "partitions": len(tickers)}
    registered, unregistered = refine_job.register(glue, DATABASE, {CARTEIRA.name: result})
    manifest = refine_job.build_manifest(run_id, DATABASE, sessions, sessions, {CARTEIRA.name: result},
                                         registered, unregistered, started_at="2025-03-18T21:00:00+00:00")
    refine_job.write_manifest(lake, manifest)
    return manifest


def test_the_aws_target_end_to_end_against_moto(aws_env, moto_endpoint, monkeypatch, glue_runs_progress_on_polls):
    """raw asset (Dagster run) → S3 → S3's own notification into SQS (the template's filter) → the Lambda entry
    point → Glue start_job_run → glue_refine_runs follows the run → [the job's catalog step, see
    stand_in_for_the_glue_script] → materializations → glue_catalog_partitions observes the partitions."""
    template = load("template")
    resolver = Resolver(template, {"ArtifactsBucket": "example-artifacts", "GlueScriptKey": "glue/refine_job-x.py",
                                   "GluePricesScriptKey": "glue/prices_job-x.py",
                                   "GluePackageKey": "glue/bovespa_assets-x.zip", "LambdaCodeKey": "lambda/x.zip"})
    outputs = {name: resolver.resolve(spec["Value"]) for name, spec in template["Outputs"].items()
               if name in ("LakeUri", "LakeBucketName", "GlueJobName", "GluePricesJobName")}
    lake_bucket, job_name = outputs["LakeBucketName"], outputs["GlueJobName"]
    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "BOVESPA_LAKE": outputs["LakeUri"],
                        "BOVESPA_GLUE_JOB_NAME": job_name,
                        "BOVESPA_GLUE_PRICES_JOB_NAME": outputs["GluePricesJobName"]}.items():
        monkeypatch.setenv(name, value)

    # what the stack creates, named as the template names it: the lake bucket notifying a queue, the Glue job
    s3, sqs, glue = (boto3.client(service, endpoint_url=moto_endpoint) for service in ("s3", "sqs", "glue"))
    s3.create_bucket(Bucket=lake_bucket)
    queue_url = sqs.create_queue(QueueName=resolver.ref("RawEventsQueue"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    [notification] = template["Resources"]["LakeBucket"]["Properties"]["NotificationConfiguration"][
        "QueueConfigurations"]
    rules = [{"Name": r["Name"], "Value": resolver.resolve(r["Value"])}
             for r in notification["Filter"]["S3Key"]["Rules"]]
    s3.put_bucket_notification_configuration(Bucket=lake_bucket, NotificationConfiguration={"QueueConfigurations": [
        {"QueueArn": queue_arn, "Events": [notification["Event"]], "Filter": {"Key": {"FilterRules": rules}}}]})
    for resource in ("RefineJob", "PricesJob"):  # the sensors follow both jobs
        spec = template["Resources"][resource]["Properties"]
        glue.create_job(Name=resolver.ref(resource), Role="arn:aws:iam::123456789012:role/refine",
                        GlueVersion=spec["GlueVersion"], DefaultArguments=resolver.resolve(spec["DefaultArguments"]),
                        Command={"Name": "glueetl",
                                 "ScriptLocation": resolver.resolve(spec["Command"]["ScriptLocation"])},
                        ExecutionProperty={"MaxConcurrentRuns": 2})
    s3.put_object(Bucket=lake_bucket, Key="refined/_manifests/readme.txt", Body=b"outside raw/: never notified")

    # 1. the Dagster graph on the aws target: the raw asset writes Parquet to the lake bucket
    settings = dataclasses.replace(Settings.from_env(), offline=True)
    assert (settings.target, settings.lake_uri, settings.glue_job_name) == ("aws", f"s3://{lake_bucket}", job_name)
    runner = Runner(settings, echo=lambda _: None)
    report = runner.backfill(["IBOV"], date(2025, 3, 17), date(2025, 3, 18))
    assert [o.status for o in report.outcomes] == ["loaded", "loaded"]
    assert runner.refine([date(2025, 3, 17)]) == []  # on AWS, S3's notification starts Glue, not the CLI

    # 2. S3 notified the queue (moto emits the events); the Lambda gets them as an SQS batch
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    records = [r for b in bodies for r in b.get("Records", [])]
    keys = sorted({unquote_plus(r["s3"]["object"]["key"]) for r in records})
    assert keys == [f"raw/carteira/indice=IBOV/data_pregao=2025-03-{d}/part-00000.parquet" for d in (17, 18)]
    # moto announces each multipart upload twice (ObjectCreated:Put and :CompleteMultipartUpload, same eTag);
    # real S3 sends one event but may deliver it twice: either way the claims ledger starts one run per version
    assert len(records) == 4
    env = {n: resolver.resolve(v) for n, v in template["Resources"]["TriggerFunction"]["Properties"]["Environment"][
        "Variables"].items()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_handler, "_CLIENTS", {})
    event = sqs_event(*(m["Body"] for m in messages))
    result = lambda_handler.handler(event, None)
    assert result["sessions"] == ["2025-03-17", "2025-03-18"] and result["objects"] == 2
    assert len(result["duplicates"]) == 2
    assert lambda_handler.handler(event, None)["job_run_id"] is None  # SQS redelivers: the claims drop it

    # 3. the sensor follows the run: STARTING/RUNNING is not reported
    defs, instance = runner.defs, dagster_instance(settings)
    pending = tick(defs, "glue_refine_runs", instance, None)
    assert isinstance(pending, SkipReason)
    [run] = glue.get_job_runs(JobName=job_name)["JobRuns"]  # this poll moves it on to SUCCEEDED
    assert run["Id"] == result["job_run_id"] and run["Arguments"]["--lake_uri"] == settings.lake_uri
    manifest = stand_in_for_the_glue_script(Lake(settings.lake_uri, moto_endpoint), glue, run["Id"],
                                            result["sessions"])

    # 4. the finished run → materializations of the sessions it wrote and a passed check, once
    done = tick(defs, "glue_refine_runs", instance, None)
    assert isinstance(done, SensorResult)
    materialized = {e.partition: e for e in done.asset_events if isinstance(e, AssetMaterialization)}
    [check] = [e for e in done.asset_events if isinstance(e, AssetCheckEvaluation)]
    assert set(materialized) == {"2025-03-17", "2025-03-18"}
    assert all(e.asset_key == refined_key(CARTEIRA.name) for e in materialized.values())
    rows = {s: manifest["tables"][CARTEIRA.name]["sessions"][s]["rows"] for s in materialized}
    assert {s: e.metadata["dagster/row_count"].value for s, e in materialized.items()} == rows
    assert rows == {"2025-03-17": 87, "2025-03-18": 87}  # the real sample's IBOV sessions
    assert check.passed and check.metadata["glue_run_id"].value == run["Id"]
    assert f"#/job/{job_name}/run/{run['Id']}" in materialized["2025-03-17"].metadata["console_url"].value
    for event in done.asset_events:
        instance.report_runless_asset_event(event)
    assert isinstance(tick(defs, "glue_refine_runs", instance, done.cursor), SkipReason)
    assert isinstance(tick(defs, "glue_refine_runs", instance, None), SensorResult)  # cursor lost …
    assert not tick(defs, "glue_refine_runs", instance, None).asset_events  # … still nothing twice
    key = AssetCheckKey(refined_key(CARTEIRA.name), JOB_CHECK)
    assert len(instance.event_log_storage.get_asset_check_execution_history(key, limit=10)) == 1

    # 5. the catalog partitions (moto's Glue Data Catalog) → one observation of the table for the run
    observed = tick(defs, "glue_catalog_partitions", instance, None)
    [observation] = observed.asset_events
    assert observation.asset_key == refined_key(CARTEIRA.name)
    assert observation.metadata["catalog_table"].value == f"{DATABASE}.{CARTEIRA.name}"
    assert observation.metadata["catalog_partitions"].value == 87 * 2
    assert json.loads(observation.metadata["partitions_per_session"].value) == rows
    assert observation.metadata["location_sample"].value.startswith(f"s3://{lake_bucket}/refined/{CARTEIRA.name}/")


def test_charts_are_written_to_s3_in_one_put(aws_env, moto_endpoint):
    lake = Lake(f"s3://{BUCKET}/lake", s3_endpoint_url=moto_endpoint)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    assert lake.write_bytes("charts/mudancas_carteira.png", png) == f"s3://{BUCKET}/lake/charts/mudancas_carteira.png"
    lake.write_bytes("charts/mudancas_carteira.png", png)  # a refresh replaces it
    assert keys(aws_env) == ["lake/charts/mudancas_carteira.png"]
    assert aws_env.get_object(Bucket=BUCKET, Key="lake/charts/mudancas_carteira.png")["Body"].read() == png
