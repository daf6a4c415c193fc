"""Event JSON as AWS delivers it to the trigger Lambda, for tests/test_lambda_handler.py.

Shapes copied from the AWS documentation:
- S3 event notification, eventVersion 2.1 (Amazon S3 User Guide, "Event message structure"): one record per
  object, the key URL-encoded the way S3 does it (space → ``+``, ``=`` → ``%3D``, ``/`` kept).
- the ``s3:TestEvent`` S3 sends to a queue or topic when a notification configuration is saved;
- the SQS event Lambda receives from an event source mapping (Lambda Developer Guide, "Using Lambda with
  Amazon SQS"): each record's ``body`` is the message, here the JSON of an S3 event.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import urllib.parse
import uuid
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
RAW_BUCKET = "bovespa-lake-example"

_sequencer = itertools.count(0x0055AED6DCD90281E5)


def raw_key(indice: str = "IBOV", session: str = "2025-02-03", lake_prefix: str = "lake/") -> str:
    """The decoded key the raw asset writes."""
    return f"{lake_prefix}raw/carteira/indice={indice}/data_pregao={session}/part-00000.parquet"


def encode_key(key: str) -> str:
    """How S3 writes ``s3.object.key`` in a notification."""
    return urllib.parse.quote_plus(key, safe="/")


def s3_record(
    key: str,
    *,
    bucket: str = RAW_BUCKET,
    event_name: str = "ObjectCreated:Put",
    size: int = 18_244,
    etag: str | None = None,
    version_id: str | None = None,
    sequencer: str | None = None,
    encoded: bool = False,
) -> dict[str, Any]:
    """One S3 notification record (eventVersion 2.1). ``key`` is decoded unless ``encoded``."""
    if etag is None:
        digest = hashlib.md5(key.encode() + str(size).encode()).hexdigest()  # an S3 ETag is the MD5
        etag = f"{digest}-2" if event_name.endswith("CompleteMultipartUpload") else digest
    obj: dict[str, Any] = {
        "key": key if encoded else encode_key(key),
        "size": size,
        "eTag": etag,
    }
    if version_id is not None:
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer or f"{next(_sequencer):018X}"
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": "2025-02-03T21:05:09.123Z",
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "raw-carteira-created",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_test_event(bucket: str = RAW_BUCKET) -> dict[str, Any]:
    return {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2025-02-03T20:57:02.089Z",
        "Bucket": bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }


def sqs_record(body: dict[str, Any] | str, queue: str = "bovespa-raw-created") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a+example",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1738616709183",
            "SenderId": "AIDAENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1738616709185",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # what SQS computes
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
        "awsRegion": REGION,
    }


def sqs_event(*bodies: dict[str, Any] | str) -> dict[str, Any]:
    """What Lambda receives from an SQS event source mapping: one record per message."""
    return {"Records": [sqs_record(body) for body in bodies]}
