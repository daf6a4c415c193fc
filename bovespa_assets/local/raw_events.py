"""S3-shaped ObjectCreated events for raw files of the local lake (what S3 would send the Lambda).

The local sensor and the CLI hand these to the very same Lambda handler as on AWS. A file's
modification time stands in for S3's sequencer, so a rewritten partition is a new object version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from pyarrow import fs

from ..lake import Lake
from ..lambda_handler import handle

LOCAL_BUCKET = "local-lake"


def s3_event(lake: Lake, files: list[fs.FileInfo]) -> dict[str, Any]:
    records = []
    for info in files:
        key = info.path[len(lake.root) + 1 :] if info.path.startswith(lake.root + "/") else info.path
        mtime_ns = int(info.mtime_ns or 0)
        records.append({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "local",
            "eventTime": datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(),
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": LOCAL_BUCKET, "arn": f"arn:aws:s3:::{LOCAL_BUCKET}"},
                "object": {"key": quote_plus(key, safe="/"), "size": int(info.size or 0),
                           "eTag": f"{mtime_ns:x}", "sequencer": f"{mtime_ns:020X}"},
            },
        })
    return {"Records": records}


@dataclass
class FileCursor:
    """Raw files already delivered: all modified before `mtime_ns`, plus `paths` modified at it."""

    mtime_ns: int = 0
    paths: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> FileCursor:
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps({"mtime_ns": self.mtime_ns, "paths": sorted(self.paths)})

    def is_new(self, info: fs.FileInfo) -> bool:
        mtime = int(info.mtime_ns or 0)
        return mtime > self.mtime_ns or (mtime == self.mtime_ns and info.path not in self.paths)

    def advance(self, files: list[fs.FileInfo]) -> FileCursor:
        cursor = FileCursor(self.mtime_ns, list(self.paths))
        for info in files:
            mtime = int(info.mtime_ns or 0)
            if mtime > cursor.mtime_ns:
                cursor.mtime_ns, cursor.paths = mtime, [info.path]
            elif mtime == cursor.mtime_ns:
                cursor.paths.append(info.path)
        return cursor


def session_of(info: fs.FileInfo) -> str | None:
    """'2025-02-03' from .../data_pregao=2025-02-03/part-00000.parquet."""
    for part in info.path.split("/"):
        if part.startswith("data_pregao="):
            return part.split("=", 1)[1]
    return None


def deliver(lake: Lake, files: list[fs.FileInfo], jobs: Any, ledger: Any, routes: dict[str, str],
            sessions_per_run: int) -> list[tuple[list[str], int, dict[str, Any]]]:
    """Hand raw objects to the Lambda handler, whole sessions per call, `sessions_per_run` at most.

    ``routes`` (raw prefix → job name) as the Lambda is configured. One call starts at most one run
    per job, so N sessions cost ceil(N / sessions_per_run) runs of each job. Returns, per call, (its
    sessions, how many objects, the handler's result, whose ``runs`` lists the runs started).
    """
    by_session: dict[str, list[fs.FileInfo]] = {}
    for info in files:
        by_session.setdefault(session_of(info) or "", []).append(info)
    ordered, calls = sorted(by_session), []
    for at in range(0, len(ordered), sessions_per_run):
        sessions = ordered[at : at + sessions_per_run]
        batch = [info for session in sessions for info in by_session[session]]
        result = handle(s3_event(lake, batch), jobs, ledger, raw_bucket=None, routes=routes)
        if "runs" not in result:  # one route: the handler's single-job answer
            [name] = routes.values()
            started = result["job_run_id"] is not None
            result["runs"] = [{"job_name": name, "job_run_id": result["job_run_id"], "sessions": result["sessions"]}
                              ] if started else []
        calls.append((sessions, len(batch), result))
    return calls
