"""The trigger Lambda: S3 ObjectCreated events (direct or via SQS) → ONE Glue run, duplicates dropped.

AWS APIs run on moto in-process (``mock_aws``): Glue jobs and runs, S3 conditional writes for the claims
ledger, and S3 → SQS notifications for an end-to-end run with the events moto itself emits. Glue refusals
that moto cannot produce on demand (throttling, internal errors) come from botocore's Stubber.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from lambda_events import (
    RAW_BUCKET,
    REGION,
    encode_key,
    raw_key,
    s3_event,
    s3_record,
    s3_test_event,
    sqs_event,
)
from moto import mock_aws
from moto.moto_api import state_manager

from bovespa_assets import lambda_handler
from bovespa_assets.lambda_handler import FolderLedger, S3Ledger, handle, handler

JOB = "bovespa-refine-carteira"
ROOT = Path(__file__).resolve().parents[1]
# one session for the whole module: botocore loads each service model once (a fresh session per test costs ~0.2 s)
SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
# clients are cheap to keep and costly to build; moto intercepts their calls whenever a mock is active
CLIENTS = {name: SESSION.client(name) for name in ("s3", "glue", "sqs")}


@pytest.fixture
def aws(monkeypatch):
    """moto in-process, fake credentials, no endpoint overrides leaking in, a fresh client cache."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_GLUE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(lambda_handler, "_CLIENTS", {})
    with mock_aws():
        s3 = CLIENTS["s3"]
        s3.create_bucket(Bucket=RAW_BUCKET)
        glue = CLIENTS["glue"]
        glue.create_job(
            Name=JOB, Role="arn:aws:iam::123456789012:role/bovespa-glue",
            Command={"Name": "glueetl", "ScriptLocation": "s3://bovespa-code/glue/refine_carteira.py"},
            ExecutionProperty={"MaxConcurrentRuns": 1},
        )
        yield s3, glue


@pytest.fixture
def ledger(aws):
    s3, _ = aws
    return S3Ledger(s3, RAW_BUCKET)


def runs(glue) -> list[dict]:
    return glue.get_job_runs(JobName=JOB)["JobRuns"]


def run_sessions(glue) -> list[str]:
    return [run["Arguments"]["--sessions"] for run in runs(glue)]


def claims(s3, prefix: str = "_events/claims/") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=RAW_BUCKET, Prefix=prefix).get("Contents", []))


def start(event, glue, ledger, **options):
    return handle(event, glue, ledger, job_name=JOB, raw_bucket=RAW_BUCKET, **options)


# --------------------------------------------------------------------------------------------------------------
# one run per invocation


@pytest.mark.parametrize("event_name", ["ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["s3", "sqs"])
def test_an_object_created_event_starts_one_glue_run(aws, ledger, event_name, wrapped):
    _, glue = aws
    key = raw_key("IBOV", "2025-02-03")
    event = s3_event(s3_record(key, event_name=event_name))
    result = start(sqs_event(event) if wrapped else event, glue, ledger)

    [run] = runs(glue)
    assert run["JobName"] == JOB and run["Arguments"] == {"--sessions": "2025-02-03"}
    assert result == {"job_run_id": run["Id"], "sessions": ["2025-02-03"], "objects": 1, "duplicates": [],
                      "ignored": []}


def test_records_of_several_sessions_start_one_run_with_sorted_unique_sessions(aws, ledger):
    _, glue = aws
    direct = s3_event(
        s3_record(raw_key("IBOV", "2025-02-05")),
        s3_record(raw_key("IBXX", "2025-02-03")),
    )
    batch = sqs_event(
        direct,
        s3_event(s3_record(raw_key("IBOV", "2025-02-03"), event_name="ObjectCreated:CompleteMultipartUpload")),
        s3_event(s3_record(raw_key("IBOV", "2025-02-04")), s3_record(raw_key("SMLL", "2025-02-05"))),
    )
    result = start(batch, glue, ledger)

    assert run_sessions(glue) == ["2025-02-03,2025-02-04,2025-02-05"]
    assert result["sessions"] == ["2025-02-03", "2025-02-04", "2025-02-05"]
    assert result["objects"] == 5 and result["duplicates"] == [] and result["ignored"] == []


def test_an_sns_envelope_inside_the_sqs_message_is_unwrapped(aws, ledger):
    """S3 → SNS topic → SQS queue (raw message delivery off): the SQS body is the SNS envelope."""
    _, glue = aws
    envelope = {
        "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": f"arn:aws:sns:{REGION}:123456789012:bovespa-raw-created", "Subject": "Amazon S3 Notification",
        "Message": json.dumps(s3_event(s3_record(raw_key("IBOV", "2025-02-06")))),
        "Timestamp": "2025-02-06T21:05:09.200Z", "SignatureVersion": "1",
    }
    assert start(sqs_event(envelope), glue, ledger)["sessions"] == ["2025-02-06"]
    assert run_sessions(glue) == ["2025-02-06"]


def test_url_encoded_keys_are_decoded(aws, ledger):
    s3, glue = aws
    encoded = "lake/raw/carteira/indice%3DIBOV/data_pregao%3D2025-02-03/part-00000.parquet"
    with_space = raw_key("IBXX", "2025-02-04", lake_prefix="my lake/")
    assert encode_key(with_space) == "my+lake/raw/carteira/indice%3DIBXX/data_pregao%3D2025-02-04/part-00000.parquet"
    event = s3_event(s3_record(encoded, encoded=True), s3_record(encode_key(with_space), encoded=True))

    result = start(event, glue, ledger)

    assert run_sessions(glue) == ["2025-02-03,2025-02-04"] and result["objects"] == 2
    # the claims name the decoded keys: the objects the raw asset wrote
    tokens = sorted(s3.get_object(Bucket=RAW_BUCKET, Key=k)["Body"].read().decode() for k in claims(s3))
    assert [t.split("#")[0] for t in tokens] == [
        f"s3://{RAW_BUCKET}/lake/raw/carteira/indice=IBOV/data_pregao=2025-02-03/part-00000.parquet",
        f"s3://{RAW_BUCKET}/my lake/raw/carteira/indice=IBXX/data_pregao=2025-02-04/part-00000.parquet",
    ]


def test_the_raw_prefix_may_start_the_key_or_follow_a_lake_prefix(aws, ledger):
    _, glue = aws
    event = s3_event(
        s3_record(raw_key("IBOV", "2025-02-03", lake_prefix="")),
        s3_record(raw_key("IBOV", "2025-02-04", lake_prefix="a/b/")),
        s3_record(raw_key("IBOV", "2025-02-05", lake_prefix="myraw_")),  # raw/ not at a segment start
    )
    result = start(event, glue, ledger)

    assert result["sessions"] == ["2025-02-03", "2025-02-04"]
    assert [i["reason"] for i in result["ignored"]] == ["key is outside the raw prefix 'raw/carteira/'"]


def test_a_custom_raw_prefix(aws, ledger):
    _, glue = aws
    event = s3_event(s3_record("bronze/b3/indice=IBOV/data_pregao=2025-02-03/part-00000.parquet"),
                     s3_record(raw_key("IBOV", "2025-02-04")))
    result = start(event, glue, ledger, raw_prefix="/bronze/b3")  # slashes normalized

    assert result["sessions"] == ["2025-02-03"] and len(result["ignored"]) == 1


# --------------------------------------------------------------------------------------------------------------
# what is not a new raw Parquet object is ignored, with a reason


PARTITION = "lake/raw/carteira/indice=IBOV/data_pregao=2025-02-03/"
IGNORED = {  # id: (decoded key, record options, reason)
    "foreign bucket": (raw_key(), {"bucket": "someone-elses-bucket"}, "is not the raw bucket"),
    "refined prefix": ("lake/refined/tb_carteira_refined/data_pregao=2025-02-03/x.parquet", {},
                       "outside the raw prefix"),
    "ledger marker": ("_events/claims/" + "0" * 64, {}, "outside the raw prefix"),
    "csv": (PARTITION + "part-00000.csv", {}, "not a .parquet object"),
    "success marker": (PARTITION + "_SUCCESS", {}, "hidden or temporary"),
    "hidden temp file": (PARTITION + ".abc.tmp", {}, "hidden or temporary"),
    "hidden parquet": (PARTITION + ".part-00000.parquet", {}, "hidden or temporary"),
    "spark temporary dir": ("lake/raw/carteira/_temporary/0/indice=IBOV/data_pregao=2025-02-03/p.parquet", {},
                            "hidden or temporary"),
    "invalid date": (raw_key(session="2025-02-30"), {}, "invalid data_pregao '2025-02-30'"),
    "compact date": (raw_key(session="20250203"), {}, "invalid data_pregao '20250203'"),
    "no session": ("lake/raw/carteira/indice=IBOV/part-00000.parquet", {}, "no data_pregao"),
    "empty object": (raw_key(), {"size": 0}, "empty object"),
    "removed": (raw_key(), {"event_name": "ObjectRemoved:Delete"}, "is not ObjectCreated"),
    "tagging": (raw_key(), {"event_name": "ObjectTagging:Put"}, "is not ObjectCreated"),
}


@pytest.mark.parametrize("key,options,reason", IGNORED.values(), ids=IGNORED.keys())
@pytest.mark.parametrize("wrapped", [False, True], ids=["s3", "sqs"])
def test_records_that_are_not_new_raw_parquet_are_ignored(aws, ledger, key, options, reason, wrapped):
    s3, glue = aws
    event = s3_event(s3_record(key, **options))
    result = start(sqs_event(event) if wrapped else event, glue, ledger)

    assert runs(glue) == [] and claims(s3) == []
    assert result["job_run_id"] is None and result["sessions"] == [] and result["objects"] == 0
    assert len(result["ignored"]) == 1 and result["ignored"][0]["key"] == key
    assert reason in result["ignored"][0]["reason"]


@pytest.mark.parametrize("event", [s3_test_event(), sqs_event(s3_test_event())], ids=["direct", "sqs"])
def test_the_s3_test_event_is_ignored(aws, ledger, event):
    _, glue = aws
    result = start(event, glue, ledger)
    assert runs(glue) == [] and result["job_run_id"] is None
    assert [i["reason"] for i in result["ignored"]] == [f"s3:TestEvent for bucket {RAW_BUCKET!r}"]


def test_ignored_records_do_not_stop_the_valid_ones(aws, ledger):
    _, glue = aws
    batch = sqs_event(
        s3_test_event(),
        "not json at all",
        s3_event(*(s3_record(key, **options) for key, options, _ in IGNORED.values()),
                 s3_record(raw_key("IBOV", "2025-02-07"))),
    )
    result = start(batch, glue, ledger)

    assert run_sessions(glue) == ["2025-02-07"] and result["objects"] == 1
    assert len(result["ignored"]) == len(IGNORED) + 2
    assert "message body is not JSON" in result["ignored"][1]["reason"]


def test_without_a_raw_bucket_every_bucket_is_accepted(aws, ledger):
    _, glue = aws
    event = s3_event(s3_record(raw_key(), bucket="another-lake"))
    result = handle(event, glue, ledger, job_name=JOB, raw_bucket=None)
    assert result["sessions"] == ["2025-02-03"] and len(runs(glue)) == 1


# --------------------------------------------------------------------------------------------------------------
# at-least-once delivery: one run per object version


def test_a_duplicate_delivery_starts_no_run_and_a_new_version_does(aws, ledger):
    _, glue = aws
    key = raw_key("IBOV", "2025-02-03")
    first = s3_event(s3_record(key, version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko", sequencer="0055AED6DCD90281E5"))
    assert start(first, glue, ledger)["job_run_id"] is not None

    again = start(sqs_event(first), glue, ledger)  # the same notification, delivered again (via SQS this time)
    assert again == {"job_run_id": None, "sessions": [], "objects": 0, "duplicates": [key], "ignored": []}
    assert len(runs(glue)) == 1

    rewritten = s3_event(s3_record(key, version_id="Lb9ZK3X9Q8mkc0sJg2OTfcoUwhFyQg7T", sequencer="0055AED6DCD90281F0"))
    assert start(rewritten, glue, ledger)["sessions"] == ["2025-02-03"]
    assert len(runs(glue)) == 2


@pytest.mark.parametrize("field", ["sequencer", "eTag"])
def test_without_a_version_id_the_sequencer_or_etag_identifies_the_version(aws, ledger, field):
    _, glue = aws
    record = s3_record(raw_key())
    if field == "eTag":
        del record["s3"]["object"]["sequencer"]
    assert start(s3_event(record), glue, ledger)["objects"] == 1
    assert start(s3_event(record), glue, ledger)["duplicates"] == [raw_key()]

    newer = json.loads(json.dumps(record))
    newer["s3"]["object"][field] = "0055AED6DCD90281FF" if field == "sequencer" else "9b2cf535f27731c974343645a3985328"
    assert start(s3_event(newer), glue, ledger)["objects"] == 1
    assert len(runs(glue)) == 2


def test_duplicates_inside_one_batch_count_once(aws, ledger):
    _, glue = aws
    record = s3_record(raw_key("IBOV", "2025-02-03"))
    result = start(sqs_event(s3_event(record), s3_event(record), s3_event(s3_record(raw_key("IBXX")))), glue, ledger)
    assert result["objects"] == 2 and result["duplicates"] == [raw_key("IBOV", "2025-02-03")]
    assert run_sessions(glue) == ["2025-02-03"]


# --------------------------------------------------------------------------------------------------------------
# Glue refuses: claims released, error re-raised, the retry starts the run


def stubbed_glue(error_code: str, status: int):
    glue = SESSION.client("glue")
    stubber = Stubber(glue)
    expected = {"JobName": JOB, "Arguments": {"--sessions": "2025-02-03,2025-02-04"}}
    stubber.add_client_error("start_job_run", service_error_code=error_code, http_status_code=status,
                             expected_params=expected)
    stubber.add_response("start_job_run", {"JobRunId": "jr_retry"}, expected)
    stubber.activate()
    return glue, stubber


@pytest.mark.parametrize("error_code,status", [
    ("ConcurrentRunsExceededException", 400),
    ("ThrottlingException", 400),
    ("InternalServiceException", 500),
    ("ResourceNumberLimitExceededException", 400),
])
def test_a_glue_refusal_releases_the_claims_and_raises(tmp_path, error_code, status):
    glue, stubber = stubbed_glue(error_code, status)
    ledger = FolderLedger(tmp_path / "claims")
    event = sqs_event(s3_event(s3_record(raw_key("IBOV", "2025-02-04")), s3_record(raw_key("IBOV", "2025-02-03"))))

    with pytest.raises(ClientError) as refused:
        handle(event, glue, ledger, job_name=JOB, raw_bucket=RAW_BUCKET)
    assert refused.value.response["Error"]["Code"] == error_code
    assert list((tmp_path / "claims").iterdir()) == []  # nothing claimed: the redelivery is not a duplicate

    retried = handle(event, glue, ledger, job_name=JOB, raw_bucket=RAW_BUCKET)  # Lambda/SQS retry
    assert retried["job_run_id"] == "jr_retry" and retried["objects"] == 2 and retried["duplicates"] == []
    assert len(list((tmp_path / "claims").iterdir())) == 2
    stubber.assert_no_pending_responses()


def test_moto_refuses_a_concurrent_run_and_the_retry_succeeds(aws, ledger):
    """moto enforces MaxConcurrentRuns while a run is RUNNING (state manager set to manual progression)."""
    s3, glue = aws
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1_000})
    try:
        start(s3_event(s3_record(raw_key("IBOV", "2025-02-03"))), glue, ledger)
        [running] = runs(glue)
        assert running["JobRunState"] in {"STARTING", "RUNNING"}
        held = claims(s3)

        second = s3_event(s3_record(raw_key("IBOV", "2025-02-04")), s3_record(raw_key("IBXX", "2025-02-04")))
        with pytest.raises(ClientError) as refused:
            start(second, glue, ledger)
        assert refused.value.response["Error"]["Code"] == "ConcurrentRunsExceededException"
        assert claims(s3) == held  # only the first run's claim remains
    finally:
        state_manager.unset_transition("glue::job_run")

    assert runs(glue)[0]["JobRunState"] == "SUCCEEDED"
    assert start(second, glue, ledger)["sessions"] == ["2025-02-04"]
    assert run_sessions(glue) == ["2025-02-03", "2025-02-04"] and len(claims(s3)) == 3


def test_a_ledger_failure_releases_what_was_claimed_and_starts_nothing(tmp_path):
    class FlakyLedger(FolderLedger):
        def claim(self, token):
            if "IBXX" in token:
                raise OSError("disk full")
            return super().claim(token)

    class NoGlue:
        def start_job_run(self, **kwargs):
            raise AssertionError("must not start a run")

    event = s3_event(s3_record(raw_key("IBOV")), s3_record(raw_key("IBXX")))
    with pytest.raises(OSError, match="disk full"):
        handle(event, NoGlue(), FlakyLedger(tmp_path), job_name=JOB, raw_bucket=RAW_BUCKET)
    assert list(tmp_path.iterdir()) == []


def test_the_local_glue_stand_in_and_folder_ledger(tmp_path, caplog):
    """The local target: a Dagster sensor calls handle() with the same JSON, a Glue stand-in and a folder ledger."""

    class LocalGlue:
        def __init__(self):
            self.calls = []

        def start_job_run(self, *, JobName, Arguments):
            self.calls.append((JobName, Arguments))
            return {"JobRunId": f"local-{len(self.calls)}"}

    glue, ledger = LocalGlue(), FolderLedger(tmp_path / "claims")
    event = s3_event(s3_record(raw_key("IBOV", "2025-02-03"), bucket="local"), s3_record("x/y.csv", bucket="local"))
    with caplog.at_level(logging.INFO, logger=lambda_handler.__name__):
        result = handle(event, glue, ledger, job_name="local-refine", raw_bucket=None)
        handle(event, glue, ledger, job_name="local-refine", raw_bucket=None)

    assert glue.calls == [("local-refine", {"--sessions": "2025-02-03"})]
    assert result["job_run_id"] == "local-1" and result["ignored"][0]["key"] == "x/y.csv"
    lines = [r.getMessage() for r in caplog.records if r.name == lambda_handler.__name__]
    assert len(lines) == 2 and "\n" not in "".join(lines)
    assert "run local-1 sessions=2025-02-03 objects=1 duplicates=0 ignored=1" in lines[0]
    assert "run (none) sessions=- objects=0 duplicates=1 ignored=1" in lines[1]


# --------------------------------------------------------------------------------------------------------------
# ledgers


def test_s3_ledger_claims_once_with_a_conditional_write(aws):
    """moto 5.2.5 honours put_object(IfNoneMatch="*"): the second write fails with 412 PreconditionFailed."""
    s3, _ = aws
    ledger = S3Ledger(s3, RAW_BUCKET, prefix="claims/")
    token = f"s3://{RAW_BUCKET}/{raw_key()}#versionId=abc"
    assert ledger.claim(token) is True
    assert ledger.claim(token) is False
    marker = "claims/" + hashlib.sha256(token.encode()).hexdigest()
    assert claims(s3, "claims/") == [marker]
    assert s3.get_object(Bucket=RAW_BUCKET, Key=marker)["Body"].read().decode() == token

    with pytest.raises(ClientError) as raw:  # the error the ledger turns into False
        s3.put_object(Bucket=RAW_BUCKET, Key=marker, Body=b"", IfNoneMatch="*")
    assert raw.value.response["Error"]["Code"] == "PreconditionFailed"
    assert raw.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412

    ledger.release(token)
    ledger.release(token)  # releasing twice is harmless
    assert claims(s3, "claims/") == []
    assert ledger.claim(token) is True


@pytest.mark.parametrize("code,status,claimed", [
    ("PreconditionFailed", 412, False),
    ("ConditionalRequestConflict", 409, False),
    ("AccessDenied", 403, ClientError),
    ("NoSuchBucket", 404, ClientError),
])
def test_s3_ledger_error_mapping(code, status, claimed):
    s3 = SESSION.client("s3")
    expected = {"Bucket": "b", "Key": ANY, "Body": ANY, "ContentType": ANY, "IfNoneMatch": "*"}
    with Stubber(s3) as stubber:
        stubber.add_client_error("put_object", service_error_code=code, http_status_code=status,
                                 expected_params=expected)
        ledger = S3Ledger(s3, "b")
        if claimed is ClientError:
            with pytest.raises(ClientError):
                ledger.claim("token")
        else:
            assert ledger.claim("token") is claimed


def test_folder_ledger(tmp_path):
    ledger = FolderLedger(tmp_path / "nested" / "claims")
    assert ledger.claim("a") is True and ledger.claim("a") is False and ledger.claim("b") is True
    markers = sorted(p.name for p in (tmp_path / "nested" / "claims").iterdir())
    assert markers == sorted(hashlib.sha256(t.encode()).hexdigest() for t in "ab")
    ledger.release("a")
    ledger.release("a")
    assert ledger.claim("a") is True and ledger.claim("b") is False


# --------------------------------------------------------------------------------------------------------------
# the Lambda entry point


@pytest.fixture
def lambda_env(aws, monkeypatch):
    monkeypatch.setenv("GLUE_JOB_NAME", JOB)
    monkeypatch.setenv("RAW_BUCKET", RAW_BUCKET)
    for name in ("RAW_PREFIX", "LEDGER_BUCKET", "LEDGER_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", SESSION)  # what boto3.client() uses, models already loaded
    return aws


def test_handler_end_to_end_with_env_vars(lambda_env):
    s3, glue = lambda_env
    event = sqs_event(s3_event(s3_record(raw_key("IBOV", "2025-02-04")), s3_record(raw_key("IBOV", "2025-02-03"))))

    result = handler(event, None)
    assert run_sessions(glue) == ["2025-02-03,2025-02-04"] and result["job_run_id"] == runs(glue)[0]["Id"]
    assert len(claims(s3)) == 2  # default ledger: RAW_BUCKET, _events/claims/
    json.dumps(result)  # Lambda returns it as JSON

    clients = dict(lambda_handler._CLIENTS)
    assert handler(event, None)["duplicates"] == [raw_key("IBOV", "2025-02-04"), raw_key("IBOV", "2025-02-03")]
    assert clients == lambda_handler._CLIENTS and set(clients) == {"s3", "glue"}  # one client per container
    assert len(runs(glue)) == 1


def test_handler_ledger_and_prefix_settings(lambda_env, monkeypatch):
    s3, _ = lambda_env
    s3.create_bucket(Bucket="bovespa-ops")
    monkeypatch.setenv("LEDGER_BUCKET", "bovespa-ops")
    monkeypatch.setenv("LEDGER_PREFIX", "trigger/claims/")
    monkeypatch.setenv("RAW_PREFIX", "bronze/b3/")
    event = s3_event(s3_record("bronze/b3/indice=IBOV/data_pregao=2025-02-03/part-00000.parquet"),
                     s3_record(raw_key()))

    result = handler(event, None)
    assert result["sessions"] == ["2025-02-03"] and len(result["ignored"]) == 1
    listed = s3.list_objects_v2(Bucket="bovespa-ops", Prefix="trigger/claims/")["Contents"]
    assert len(listed) == 1 and claims(s3) == []


def test_handler_configuration_errors(aws, monkeypatch):
    for name in ("GLUE_JOB_NAME", "RAW_BUCKET", "LEDGER_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="GLUE_JOB_NAME"):
        handler(s3_event(), None)
    monkeypatch.setenv("GLUE_JOB_NAME", JOB)
    with pytest.raises(RuntimeError, match="LEDGER_BUCKET"):
        handler(s3_event(), None)


def test_handler_with_the_notifications_moto_sends_through_sqs(lambda_env):
    """S3 → SQS → Lambda with the events moto emits: the test event, Put, CompleteMultipartUpload, redelivery."""
    s3, glue = lambda_env
    sqs = CLIENTS["sqs"]
    queue = sqs.create_queue(QueueName="bovespa-raw-created")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=RAW_BUCKET, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}],  # no filter: sees it all
    })

    def deliver() -> dict:
        messages = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            messages += batch
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
        return sqs_event(*(m["Body"] for m in messages))

    s3.put_object(Bucket=RAW_BUCKET, Key=raw_key("IBOV", "2025-02-04", "my lake/"), Body=b"PAR1 ibov PAR1")
    upload = s3.create_multipart_upload(Bucket=RAW_BUCKET, Key=raw_key("IBXX", "2025-02-03", "my lake/"))
    part = s3.upload_part(Bucket=RAW_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1,
                          Body=b"PAR1 ibxx PAR1")
    s3.complete_multipart_upload(Bucket=RAW_BUCKET, Key=upload["Key"], UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    s3.put_object(Bucket=RAW_BUCKET, Key="my lake/raw/carteira/indice=IBOV/data_pregao=2025-02-04/.x.tmp", Body=b"")

    event = deliver()
    bodies = [json.loads(r["body"]) for r in event["Records"]]
    assert [b.get("Event") or b["Records"][0]["eventName"] for b in bodies] == [
        "s3:TestEvent", "ObjectCreated:Put",
        "ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload",  # moto sends both for one multipart object
        "ObjectCreated:Put",
    ]
    assert bodies[1]["Records"][0]["s3"]["object"]["key"].startswith("my+lake%2Fraw%2Fcarteira%2Findice%3DIBOV")

    result = handler(event, None)
    assert run_sessions(glue) == ["2025-02-03,2025-02-04"] and result["objects"] == 2
    assert result["duplicates"] == [raw_key("IBXX", "2025-02-03", "my lake/")]  # same object version, same eTag
    assert [i["reason"].split(" for ")[0] for i in result["ignored"]] == ["s3:TestEvent", "hidden or temporary name"]

    claim_events = deliver()  # the ledger's own markers are S3 objects too: their events start nothing
    assert len(claim_events["Records"]) == 2
    assert handler(claim_events, None)["job_run_id"] is None

    again = handler(event, None)  # SQS redelivers the whole batch
    assert again["job_run_id"] is None and again["objects"] == 0
    ibov, ibxx = raw_key("IBOV", "2025-02-04", "my lake/"), raw_key("IBXX", "2025-02-03", "my lake/")
    assert again["duplicates"] == [ibov, ibxx, ibxx]
    assert len(runs(glue)) == 1


# --------------------------------------------------------------------------------------------------------------
# packaging: the Lambda zip holds this one module, the runtime provides boto3


def test_the_handler_imports_only_the_standard_library_and_boto3():
    probe = f"""
import json, sys
before = set(sys.modules)
import bovespa_assets.lambda_handler as module
from bovespa_assets.lambda_handler import FolderLedger, S3Ledger, handle
import tempfile
glue = type("Glue", (), {{"start_job_run": lambda self, **kw: {{"JobRunId": "x"}}}})()
event = {json.dumps(s3_event(s3_record(raw_key())))!r}
with tempfile.TemporaryDirectory() as tmp:
    assert handle(json.loads(event), glue, FolderLedger(tmp), job_name="j", raw_bucket=None)["job_run_id"] == "x"
module._client("s3"); module._client("glue")
S3Ledger(module._client("s3"), "b")
loaded = set(sys.modules) - before
# the standard library (multiprocessing aliases __main__ as __mp_main__), boto3 and what boto3 itself needs
allowed = set(sys.stdlib_module_names) | {{"__mp_main__", "bovespa_assets", "boto3", "botocore", "jmespath",
                                          "dateutil", "urllib3", "s3transfer", "six", "certifi"}}
print(json.dumps(sorted(m for m in loaded if m.split(".")[0] not in allowed
                        or (m.startswith("bovespa_assets.") and m != "bovespa_assets.lambda_handler"))))
"""
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    foreign = json.loads(out.stdout.strip().splitlines()[-1])
    assert foreign == [], f"the handler pulled in modules the Lambda runtime does not have: {foreign}"

    # every import statement, lazy ones inside functions included
    tree = ast.parse((ROOT / "bovespa_assets" / "lambda_handler.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "." for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
    assert {m.split(".")[0] for m in imported} - set(sys.stdlib_module_names) == {"boto3", "botocore"}


# --------------------------------------------------------------------------------------------------------------
# routing: raw/carteira/ → the portfolio job, raw/cotacoes/ → the prices job, one run per job per invocation

PRICES_JOB = "bovespa-refine-cotacoes"
ROUTES = {"raw/carteira/": JOB, "raw/cotacoes/": PRICES_JOB}


def price_key(session: str, ticker: str = "BVSP", lake_prefix: str = "lake/") -> str:
    return f"{lake_prefix}raw/cotacoes/ticker={ticker}/data_pregao={session}/part-00000.parquet"


@pytest.fixture
def two_jobs(aws):
    s3, glue = aws
    glue.create_job(
        Name=PRICES_JOB, Role="arn:aws:iam::123456789012:role/bovespa-glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://bovespa-code/glue/prices_job.py"},
    )
    return s3, glue


def test_objects_are_routed_by_prefix_one_run_per_job(two_jobs, ledger):
    _, glue = two_jobs
    event = sqs_event(s3_event(
        s3_record(raw_key("IBOV", "2025-02-04")), s3_record(price_key("2025-02-04")),
        s3_record(raw_key("IBOV", "2025-02-03")), s3_record(price_key("2025-02-03")),
        s3_record(price_key("2025-02-05")), s3_record("lake/raw/other/x/data_pregao=2025-02-03/part-00000.parquet"),
    ))
    result = handle(event, glue, ledger, raw_bucket=RAW_BUCKET, routes=ROUTES)
    assert run_sessions(glue) == ["2025-02-03,2025-02-04"]
    [prices_run] = glue.get_job_runs(JobName=PRICES_JOB)["JobRuns"]
    assert prices_run["Arguments"]["--sessions"] == "2025-02-03,2025-02-04,2025-02-05"
    assert [(r["job_name"], r["sessions"]) for r in result["runs"]] == [
        (JOB, ["2025-02-03", "2025-02-04"]), (PRICES_JOB, ["2025-02-03", "2025-02-04", "2025-02-05"])]
    assert result["objects"] == 5 and result["sessions"] == ["2025-02-03", "2025-02-04", "2025-02-05"]
    assert [i["reason"] for i in result["ignored"]] == [
        "key is outside the raw prefixes 'raw/carteira/', 'raw/cotacoes/'"]
    # the same delivery again starts nothing
    again = handle(event, glue, ledger, raw_bucket=RAW_BUCKET, routes=ROUTES)
    assert again["runs"] == [] and len(again["duplicates"]) == 5


def test_only_price_objects_start_only_the_prices_job(two_jobs, ledger):
    _, glue = two_jobs
    result = handle(s3_event(s3_record(price_key("2025-03-05"))), glue, ledger, raw_bucket=RAW_BUCKET, routes=ROUTES)
    assert runs(glue) == [] and [r["job_name"] for r in result["runs"]] == [PRICES_JOB]


def test_a_refused_prices_run_releases_only_its_claims(tmp_path):
    glue = SESSION.client("glue")
    stubber = Stubber(glue)
    stubber.add_response("start_job_run", {"JobRunId": "jr_carteira"},
                         {"JobName": JOB, "Arguments": {"--sessions": "2025-02-03"}})
    stubber.add_client_error("start_job_run", service_error_code="ThrottlingException", http_status_code=400,
                             expected_params={"JobName": PRICES_JOB, "Arguments": {"--sessions": "2025-02-03"}})
    stubber.add_response("start_job_run", {"JobRunId": "jr_prices"},
                         {"JobName": PRICES_JOB, "Arguments": {"--sessions": "2025-02-03"}})
    stubber.activate()
    ledger = FolderLedger(tmp_path / "claims")
    event = s3_event(s3_record(raw_key("IBOV", "2025-02-03")), s3_record(price_key("2025-02-03")))
    with pytest.raises(ClientError):
        handle(event, glue, ledger, raw_bucket=RAW_BUCKET, routes=ROUTES)
    assert len(list((tmp_path / "claims").iterdir())) == 1  # the started portfolio run keeps its claim
    retried = handle(event, glue, ledger, raw_bucket=RAW_BUCKET, routes=ROUTES)  # the redelivery
    assert [r["job_run_id"] for r in retried["runs"]] == ["jr_prices"]
    assert retried["duplicates"] == [raw_key("IBOV", "2025-02-03")]
    stubber.assert_no_pending_responses()


def test_the_lambda_entry_point_routes_prices_when_configured(two_jobs, monkeypatch):
    _, glue = two_jobs
    monkeypatch.setenv("GLUE_JOB_NAME", JOB)
    monkeypatch.setenv("GLUE_PRICES_JOB_NAME", PRICES_JOB)
    monkeypatch.setenv("RAW_BUCKET", RAW_BUCKET)
    result = handler(s3_event(s3_record(price_key("2025-02-03")), s3_record(raw_key("IBOV", "2025-02-03"))), None)
    assert {r["job_name"] for r in result["runs"]} == {JOB, PRICES_JOB}
    assert len(glue.get_job_runs(JobName=PRICES_JOB)["JobRuns"]) == 1 and len(runs(glue)) == 1
