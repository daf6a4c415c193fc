"""Turn finished Glue job runs into Dagster events: the lineage raw → refined in the UI.

The refine job writes a manifest per run (``refined/_manifests/<run id>.json``: sessions and rows
per table). For each finished run this module produces materializations of the refined partitions
it wrote, a check result (failed runs show their error message), and observations of the catalog
partitions it registered. Sensors and the CLI share it, and both skip a run already reported to
the instance (events are tagged with the run id), so nothing is reported twice.
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
)

from .lake import Lake
from .refine.tables import DATABASE, MANIFEST_PREFIX, RefineJob, asset_partition_of, catalog_expression

RUN_TAG = "bovespa/glue_run_id"
CATALOG_TAG = "bovespa/catalog_run_id"
JOB_CHECK = "glue_job_succeeded"
FINISHED = {"SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT", "ERROR"}


def run_tag(run_id: str) -> str:
    """Tag value for a Glue run: Glue ids are 67 characters, Dagster tag values at most 63."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:32]


def refined_key(table_name: str) -> AssetKey:
    return AssetKey(["refined", table_name])


@dataclass
class RunCursor:
    """Runs already handled: everything completed before `completed_after`, plus `ids` completed at it."""

    completed_after: str = ""
    ids: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | None) -> "RunCursor":
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps({"completed_after": self.completed_after, "ids": sorted(self.ids)})

    def is_new(self, run: dict[str, Any]) -> bool:
        completed = _iso(run.get("CompletedOn"))
        return completed > self.completed_after or (completed == self.completed_after and run["Id"] not in self.ids)

    def advance(self, runs: Iterable[dict[str, Any]]) -> "RunCursor":
        cursor = RunCursor(self.completed_after, list(self.ids))
        for run in runs:
            completed = _iso(run.get("CompletedOn"))
            if completed > cursor.completed_after:
                cursor.completed_after, cursor.ids = completed, [run["Id"]]
            elif completed == cursor.completed_after:
                cursor.ids.append(run["Id"])
        return cursor


def _error_code(error: Exception) -> str:
    """boto3's error code (``ClientError.response``); the local job service raises the same shape."""
    return str((getattr(error, "response", None) or {}).get("Error", {}).get("Code", ""))


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value or "")


def finished_runs(
    jobs: Any,
    job_names: str | Iterable[str],
    cursor: RunCursor,
    max_pages: int = 5,
    on_missing_job: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Finished runs of the job(s) the cursor has not seen, oldest completion first (one cursor for all).

    A job the service does not know (e.g. the prices job not deployed yet) is skipped and passed to
    ``on_missing_job``, so one missing job never hides the runs of the others.
    """
    runs = []
    for job_name in [job_names] if isinstance(job_names, str) else job_names:
        token = None
        for _ in range(max_pages):
            try:
                page = jobs.get_job_runs(JobName=job_name, **({"NextToken": token} if token else {}))
            except Exception as e:
                if _error_code(e) != "EntityNotFoundException" or on_missing_job is None:
                    raise
                on_missing_job(job_name)
                break
            runs.extend({"JobName": job_name, **r} for r in page.get("JobRuns", [])
                        if r.get("JobRunState") in FINISHED and cursor.is_new(r))
            token = page.get("NextToken")
            if not token:
                break
    return sorted(runs, key=lambda r: (_iso(r.get("CompletedOn")), r["Id"]))


def _reported_run_ids(instance: Any, job: RefineJob, limit: int = 500) -> set[str]:
    """Glue runs the instance already holds a glue_job_succeeded result for (every run gets one)."""
    check = AssetCheckKey(refined_key(job.primary.name), JOB_CHECK)
    records = instance.event_log_storage.get_asset_check_execution_history(check, limit=limit)
    ids = set()
    for record in records:
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        value = getattr(evaluation, "metadata", {}).get("glue_run_id") if evaluation else None
        if value is not None:
            ids.add(value.value)
    return ids


def already_reported(instance: Any, run_id: str, job: RefineJob) -> bool:
    """Whether a sensor or a CLI command already recorded this Glue run (succeeded or failed)."""
    return run_id in _reported_run_ids(instance, job)


def catalog_observed(instance: Any, manifest: dict[str, Any], job: RefineJob, limit: int = 500) -> bool:
    """Whether the catalog partitions a run registered were already observed (by a sensor or the CLI)."""
    key = refined_key(job.primary.name)
    records = instance.fetch_observations(AssetRecordsFilter(asset_key=key), limit=limit).records
    tag = run_tag(manifest.get("job_run_id", ""))
    return any((r.asset_observation.tags or {}).get(CATALOG_TAG) == tag for r in records if r.asset_observation)


def read_manifest(lake: Lake, run_id: str) -> dict[str, Any] | None:
    key = f"{MANIFEST_PREFIX}/{run_id}.json"
    if not lake.exists(key):
        return None
    with lake.filesystem.open_input_stream(lake.path(key)) as stream:
        return json.loads(stream.read())


def _written(manifest: dict[str, Any], table_name: str) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    """A table's manifest entry and its figures per Dagster partition (sessions, or months for monthly tables)."""
    written = manifest["tables"].get(table_name, {})
    return written, written.get("asset_partitions", written.get("sessions", {}))


def run_events(
    run: dict[str, Any], manifest: dict[str, Any] | None, job: RefineJob, console_url: str | None = None
) -> Iterator[AssetMaterialization | AssetCheckEvaluation]:
    """Materializations of what a succeeded run wrote, and the job check's result for the run."""
    run_id, state = run["Id"], run.get("JobRunState")
    sessions = sorted(s for s in (run.get("Arguments") or {}).get("--sessions", "").split(",") if s)
    common = {
        "glue_run_id": run_id,
        "duration_s": run.get("ExecutionTime") or 0,
        "sessions_requested": len(sessions),
        "arguments": json.dumps(run.get("Arguments") or {}, sort_keys=True),
        **({"console_url": console_url} if console_url else {}),
    }
    ok = state == "SUCCEEDED" and manifest is not None
    if ok:
        for table in job.tables:
            written, partitions = _written(manifest, table.name)
            for session, figures in sorted(partitions.items()):
                yield AssetMaterialization(
                    asset_key=refined_key(table.name),
                    partition=session,
                    metadata={**common, "dagster/row_count": figures.get("rows", 0),
                              "partitions": figures.get("partitions", 0), "location": written.get("location", "")},
                    tags={RUN_TAG: run_tag(run_id)},
                )
    error = run.get("ErrorMessage") or ("" if ok else f"run {state} without a manifest")
    yield AssetCheckEvaluation(
        asset_key=refined_key(job.primary.name),
        check_name=JOB_CHECK,
        passed=ok,
        severity=AssetCheckSeverity.ERROR,
        metadata={**common, "state": state or "", "error": error or "none",
                  "first_session": sessions[0] if sessions else "", "last_session": sessions[-1] if sessions else ""},
        description=None if ok else f"Glue run {run_id} {state}: {error}",
    )


def unreported_run_events(instance: Any, lake: Lake, run: dict[str, Any], refine: Any) -> list[Any]:
    """Materializations and the check result of one finished run, unless it was already recorded."""
    job = refine.refine_job(run["JobName"])
    if already_reported(instance, run["Id"], job):
        return []
    manifest = read_manifest(lake, run["Id"]) if run.get("JobRunState") == "SUCCEEDED" else None
    return list(run_events(run, manifest, job, refine.console_url(run["Id"], run["JobName"])))


def unobserved_catalog_events(instance: Any, lake: Lake, run: dict[str, Any], refine: Any) -> list[Any]:
    """Observations of the catalog partitions one succeeded run registered, unless already recorded."""
    job = refine.refine_job(run["JobName"])
    manifest = read_manifest(lake, run["Id"]) if run.get("JobRunState") == "SUCCEEDED" else None
    if manifest is None or catalog_observed(instance, manifest, job):
        return []
    return list(catalog_events(refine.catalog(), manifest, job, refine.database))


def catalog_events(
    catalog: Any, manifest: dict[str, Any], job: RefineJob, database: str = DATABASE
) -> Iterator[AssetObservation]:
    """One observation per table and run: the catalog partitions it now answers for the run's sessions.

    Per run rather than per partition: a backfill registers tens of thousands of (date, ticker)
    partitions, and each Dagster event costs a write; the per-session counts are in the metadata.
    """
    run_id = manifest.get("job_run_id", "")
    for table in job.tables:
        sessions = sorted(_written(manifest, table.name)[1])
        if not sessions:
            continue
        expression = catalog_expression(table, sessions)
        per_session: dict[str, int] = dict.fromkeys(sessions, 0)
        sample: list[list[str]] = []
        location, token = "", None
        while True:
            page = catalog.get_partitions(DatabaseName=database, TableName=table.name, Expression=expression,
                                          **({"NextToken": token} if token else {}))
            for partition in page.get("Partitions", []):
                asset_partition = asset_partition_of(table, partition["Values"])
                if asset_partition in per_session:
                    per_session[asset_partition] += 1
                    sample.append(partition["Values"])
                    location = location or partition["StorageDescriptor"]["Location"]
            token = page.get("NextToken")
            if not token:
                break
        yield AssetObservation(
            asset_key=refined_key(table.name),
            metadata={
                "catalog_table": f"{database}.{table.name}",
                "catalog_partitions": sum(per_session.values()),
                "sessions": len(sessions),
                "first_session": sessions[0],
                "last_session": sessions[-1],
                "partitions_per_session": json.dumps(per_session),
                "values_sample": json.dumps(sorted(sample)[:10]),
                "location_sample": location,
                "glue_run_id": run_id,
            },
            tags={CATALOG_TAG: run_tag(run_id)},
        )
