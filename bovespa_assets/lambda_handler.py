"""The thin trigger between the raw layer and the Glue jobs: S3 ObjectCreated events in, ONE Glue run per job out.

The raw asset writes ``[<lake prefix>/]raw/carteira/indice=<INDEX>/data_pregao=<YYYY-MM-DD>/part-00000.parquet``.
S3 notifies this handler, either directly or through SQS (each SQS record's ``body`` is the JSON of an S3
event; an SNS envelope inside the body is unwrapped too). For one invocation the handler:

1. reads every record, URL-decodes the key (S3 sends ``=`` as ``%3D`` and a space as ``+``) and ignores, with a
   reason in the result, what is not a new raw Parquet object: another bucket than ``raw_bucket``, a key outside
   ``raw_prefix``, a name that is not ``.parquet``, a hidden/temporary name (a segment starting with ``.`` or
   ``_``), an event that is not ``ObjectCreated:*``, a missing or invalid ``data_pregao=YYYY-MM-DD``, and the
   ``s3:TestEvent`` S3 sends when a notification is configured;
2. claims each object version once in a ledger (token = bucket + key + versionId, else sequencer, else eTag), so
   a redelivered event (S3 and SQS deliver at least once) starts nothing; a new version of the same key does;
3. starts ONE Glue run per job with ``--sessions`` = its sorted unique sessions (objects are routed by
   prefix: ``raw/carteira/`` to the portfolio job, ``raw/cotacoes/`` to the prices job when configured); when
   Glue refuses (throttling, concurrency, internal error...) the claims of the jobs not started are released
   and the error is re-raised, so Lambda/SQS retries the event and nothing is lost.

It never reads or transforms data. It imports only the standard library and boto3 (the Lambda runtime ships
both), so it can be zipped alone; locally a Dagster sensor calls :func:`handle` with the same event JSON, a
local Glue stand-in with the same method names and a :class:`FolderLedger`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import urllib.parse
from collections import Counter
from datetime import date
from typing import Any, Protocol

logger = logging.getLogger(__name__)

DEFAULT_RAW_PREFIX = "raw/carteira/"
DEFAULT_PRICES_RAW_PREFIX = "raw/cotacoes/"
DEFAULT_LEDGER_PREFIX = "_events/claims/"
TEST_EVENT = "s3:TestEvent"
_SESSION_SEGMENT = re.compile(r"data_pregao=(?P<value>.*)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# S3 answers a conditional write that lost the race with 412 PreconditionFailed, or 409
# ConditionalRequestConflict while another conditional write on the same key is in flight.
_ALREADY_CLAIMED = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_NOT_JSON = object()


class GlueJobs(Protocol):
    """What the handler needs from Glue: boto3's glue client, or the local stand-in."""

    def start_job_run(self, *, JobName: str, Arguments: dict[str, str]) -> dict[str, Any]: ...


class Ledger(Protocol):
    """Remembers which object versions already triggered a run. ``claim`` is atomic: True only once per token."""

    def claim(self, token: str) -> bool: ...

    def release(self, token: str) -> None: ...


# ---------------------------------------------------------------------------------------------------------------
# ledgers


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class S3Ledger:
    """Claims as S3 objects written with ``If-None-Match: *`` (S3 conditional writes): exactly one writer wins.

    The marker's body is the token itself, so an operator can see which object version a marker stands for.
    A lifecycle rule may expire old markers; a redelivery that arrives after that re-runs an idempotent job.
    """

    def __init__(self, s3_client: Any, bucket: str, prefix: str = DEFAULT_LEDGER_PREFIX):
        self.s3 = s3_client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, token: str) -> str:
        return f"{self.prefix}{_digest(token)}"

    def claim(self, token: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=self.key(token), Body=token.encode("utf-8"),
                ContentType="text/plain; charset=utf-8", IfNoneMatch="*",
            )
        except ClientError as error:
            if _error_code(error) in _ALREADY_CLAIMED or _http_status(error) == 412:
                return False
            raise
        return True

    def release(self, token: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(token))  # S3 deletes of a missing key succeed


class FolderLedger:
    """Claims as marker files created with ``O_CREAT | O_EXCL`` (atomic on a local file system)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)

    def _marker(self, token: str) -> str:
        return os.path.join(self.path, _digest(token))

    def claim(self, token: str) -> bool:
        os.makedirs(self.path, exist_ok=True)
        try:
            fd = os.open(self._marker(token), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as marker:
            marker.write(token)
        return True

    def release(self, token: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._marker(token))


def _response(error: BaseException) -> dict[str, Any]:
    response = getattr(error, "response", None)  # botocore ClientError
    return response if isinstance(response, dict) else {}


def _error_code(error: BaseException) -> str:
    return str(_response(error).get("Error", {}).get("Code", ""))


def _http_status(error: BaseException) -> int | None:
    return _response(error).get("ResponseMetadata", {}).get("HTTPStatusCode")


# ---------------------------------------------------------------------------------------------------------------
# event parsing


def _s3_records(event: Any, ignored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The S3 notification records in a direct, SQS-wrapped (or SNS-in-SQS) event; test events and junk ignored."""
    if event is _NOT_JSON:
        return []
    if not isinstance(event, dict):
        ignored.append({"key": None, "reason": f"not an S3 event: {type(event).__name__}"})
        return []
    if event.get("Event") == TEST_EVENT:
        ignored.append({"key": None, "reason": f"{TEST_EVENT} for bucket {event.get('Bucket')!r}"})
        return []
    if event.get("Type") == "Notification" and isinstance(event.get("Message"), str):  # SNS envelope
        return _s3_records(_loads(event["Message"], ignored), ignored)
    records = event.get("Records")
    if not isinstance(records, list):
        ignored.append({"key": None, "reason": "event has no Records"})
        return []
    found: list[dict[str, Any]] = []
    for record in records:
        if not isinstance(record, dict):
            ignored.append({"key": None, "reason": "record is not an object"})
        elif record.get("eventSource") == "aws:sqs":
            found.extend(_s3_records(_loads(record.get("body"), ignored), ignored))
        elif record.get("EventSource") == "aws:sns":
            found.extend(_s3_records(_loads(_mapping(record.get("Sns")).get("Message"), ignored), ignored))
        else:
            found.append(record)
    return found


def _loads(text: Any, ignored: list[dict[str, Any]]) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        ignored.append({"key": None, "reason": f"message body is not JSON: {str(text)[:80]!r}"})
        return _NOT_JSON


def _normalized_prefix(raw_prefix: str) -> str:
    prefix = raw_prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _after_prefix(key: str, prefix: str) -> str | None:
    """What follows ``prefix`` when it starts a path segment of ``key`` (``raw/…`` or ``<lake>/raw/…``)."""
    if key.startswith(prefix):
        return key[len(prefix) :]
    at = key.find(f"/{prefix}")
    return None if at < 0 else key[at + 1 + len(prefix) :]


def _session(segments: list[str]) -> tuple[str | None, str | None]:
    """(session, None) from the ``data_pregao=`` segment, or (None, reason)."""
    for segment in segments:
        match = _SESSION_SEGMENT.fullmatch(segment)
        if match:
            value = match["value"]
            try:
                if not _ISO_DATE.fullmatch(value):
                    raise ValueError(value)
                return date.fromisoformat(value).isoformat(), None
            except ValueError:
                return None, f"invalid data_pregao {value!r} (expected YYYY-MM-DD)"
    return None, "no data_pregao=YYYY-MM-DD partition in key"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _version_token(bucket: str, key: str, s3_object: dict[str, Any]) -> str | None:
    for field in ("versionId", "sequencer", "eTag"):
        value = s3_object.get(field)
        if value:
            return f"s3://{bucket}/{key}#{field}={value}"
    return None


# ---------------------------------------------------------------------------------------------------------------
# the handler


def handle(
    event: dict,
    glue: GlueJobs,
    ledger: Ledger,
    *,
    job_name: str | None = None,
    raw_bucket: str | None,
    raw_prefix: str = DEFAULT_RAW_PREFIX,
    routes: dict[str, str] | None = None,
) -> dict:
    """Start ONE Glue run per job for the raw sessions that ``event`` announces; see the module docstring.

    ``routes`` maps raw prefixes to job names (``{"raw/carteira/": "...-carteira", "raw/cotacoes/": "...-cotacoes"}``);
    without it, objects under ``raw_prefix`` go to ``job_name``. Returns ``{"job_run_id", "sessions", "objects",
    "duplicates", "ignored"}`` (the first run started, all sessions), plus ``"runs"`` (one entry per job started:
    ``job_name``, ``job_run_id``, ``sessions``) when several routes are given. Raises (after releasing the claims of
    every job whose run did not start) when the ledger or Glue fails, so the event is delivered again.
    """
    if routes is None:
        if not job_name:
            raise ValueError("handle() needs job_name (or routes)")
        routes = {raw_prefix: job_name}
    prefixes = {_normalized_prefix(prefix): name for prefix, name in routes.items()}
    outside = (f"key is outside the raw prefix {next(iter(prefixes))!r}" if len(prefixes) == 1
               else f"key is outside the raw prefixes {', '.join(repr(p) for p in prefixes)}")
    ignored: list[dict[str, Any]] = []
    candidates: list[tuple[str, str, str | None, str]] = []  # (key, session, version token, job name)

    for record in _s3_records(event, ignored):
        s3 = _mapping(record.get("s3"))
        bucket = str(_mapping(s3.get("bucket")).get("name") or "")
        s3_object = _mapping(s3.get("object"))
        raw_key = s3_object.get("key")
        key = urllib.parse.unquote_plus(raw_key) if isinstance(raw_key, str) else None
        event_name = str(record.get("eventName") or "")

        reason: str | None = None
        session: str | None = None
        routed = next(((p, _after_prefix(key, p)) for p in prefixes if key and _after_prefix(key, p) is not None),
                      (None, None))
        prefix, rest = routed
        if not key:
            reason = "record has no s3.object.key"
        elif event_name.removeprefix("s3:").split(":", 1)[0] != "ObjectCreated":
            reason = f"event {event_name or '(none)'} is not ObjectCreated"
        elif raw_bucket and bucket != raw_bucket:
            reason = f"bucket {bucket!r} is not the raw bucket {raw_bucket!r}"
        elif rest is None or prefix is None:
            reason = outside
        elif any(part.startswith((".", "_")) for part in rest.split("/")):
            reason = "hidden or temporary name"
        elif not key.endswith(".parquet"):
            reason = "not a .parquet object"
        elif s3_object.get("size") == 0:
            reason = "empty object (size 0)"
        else:
            session, reason = _session(rest.split("/")[:-1])
        if reason is not None or session is None or prefix is None:
            ignored.append({"key": key, "reason": reason or "no session"})
            continue
        candidates.append((key, session, _version_token(bucket, key, s3_object), prefixes[prefix]))

    claimed: dict[str, list[str]] = {}  # job name → tokens claimed for it
    duplicates: list[str] = []
    sessions: dict[str, set[str]] = {}  # job name → sessions
    started: list[dict[str, Any]] = []
    try:
        for key, session, token, job in candidates:
            if token is not None:
                if not ledger.claim(token):
                    duplicates.append(key)
                    continue
                claimed.setdefault(job, []).append(token)
            sessions.setdefault(job, set()).add(session)
        for job in (name for name in prefixes.values() if sessions.get(name)):
            days = sorted(sessions[job])
            response = glue.start_job_run(JobName=job, Arguments={"--sessions": ",".join(days)})
            started.append({"job_name": job, "job_run_id": response["JobRunId"], "sessions": days})
    except BaseException as error:  # Glue refused, the ledger failed, or the invocation is being torn down
        done = {run["job_name"] for run in started}
        to_release = [token for job, tokens in claimed.items() if job not in done for token in tokens]
        for token in to_release:
            try:
                ledger.release(token)
            except Exception:  # keep the original error; a stuck claim is logged for an operator
                logger.exception("could not release claim %s", token)
        pending = sorted(s for job, days in sessions.items() if job not in done for s in days)
        logger.warning(
            "glue job(s) %s not started for sessions %s (%d claims released): %s %s",
            ",".join(sorted(set(sessions) - done)) or "-", ",".join(pending) or "-", len(to_release),
            type(error).__name__, _error_code(error) or error,
        )
        raise

    all_sessions = sorted({s for days in sessions.values() for s in days})
    result: dict[str, Any] = {
        "job_run_id": started[0]["job_run_id"] if started else None,
        "sessions": all_sessions,
        "objects": sum(len(t) for t in claimed.values()) + sum(1 for c in candidates if c[2] is None),
        "duplicates": duplicates,
        "ignored": ignored,
    }
    if len(prefixes) > 1:
        result["runs"] = started
    reasons = Counter(item["reason"] for item in ignored)
    for run in started or [{"job_name": ",".join(prefixes.values()), "job_run_id": None, "sessions": []}]:
        logger.info(
            "glue job %s run %s sessions=%s objects=%d duplicates=%d ignored=%d%s",
            run["job_name"], run["job_run_id"] or "(none)", ",".join(run["sessions"]) or "-", result["objects"],
            len(duplicates), len(ignored), f" {dict(reasons)}" if reasons else "",
        )
    return result


# ---------------------------------------------------------------------------------------------------------------
# the AWS Lambda entry point

_CLIENTS: dict[str, Any] = {}


def _client(service: str) -> Any:
    """One boto3 client per service and container (Lambda reuses warm containers).

    Short timeouts and botocore's standard retries (which retry throttling) keep a slow call inside the Lambda
    timeout, so the handler itself gets to release its claims and re-raise instead of being killed mid-call.
    """
    if service not in _CLIENTS:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"})
        _CLIENTS[service] = boto3.client(service, config=config)
    return _CLIENTS[service]


def handler(event: dict, context: Any) -> dict:
    """Lambda entry point. Env: GLUE_JOB_NAME (required), RAW_BUCKET, RAW_PREFIX, LEDGER_BUCKET, LEDGER_PREFIX;
    GLUE_PRICES_JOB_NAME (and PRICES_RAW_PREFIX, default raw/cotacoes/) routes price objects to the prices job."""
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    job_name = os.environ.get("GLUE_JOB_NAME")
    if not job_name:
        raise RuntimeError("GLUE_JOB_NAME is not set: the Lambda needs the name of the Glue job to start")
    raw_bucket = os.environ.get("RAW_BUCKET") or None
    ledger_bucket = os.environ.get("LEDGER_BUCKET") or raw_bucket
    if not ledger_bucket:
        raise RuntimeError("set LEDGER_BUCKET (or RAW_BUCKET): the claims ledger that drops duplicate deliveries")
    ledger = S3Ledger(_client("s3"), ledger_bucket, os.environ.get("LEDGER_PREFIX") or DEFAULT_LEDGER_PREFIX)
    routes = {os.environ.get("RAW_PREFIX") or DEFAULT_RAW_PREFIX: job_name}
    prices_job = os.environ.get("GLUE_PRICES_JOB_NAME")
    if prices_job:
        routes[os.environ.get("PRICES_RAW_PREFIX") or DEFAULT_PRICES_RAW_PREFIX] = prices_job
    return handle(event, _client("glue"), ledger, raw_bucket=raw_bucket, routes=routes)
