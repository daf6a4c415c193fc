"""The local Glue job service: the subset of boto3's Glue client for job runs, over local processes.

``start_job_run`` runs the job's script as Glue does (``--key value`` arguments, ``--JOB_NAME`` and
``--JOB_RUN_ID`` added) in a detached runner process (:mod:`bovespa_assets.local.job_runner`), so a
run outlives the process that started it. Every run is a JSON record in Glue's JobRun shape at
``<home>/job_runs/<JobName>/<run_id>.json``, its output in ``<home>/job_runs/<JobName>/<run_id>/job.log``
(the record's ``LogPath``, a local extra). ``get_job_run`` / ``get_job_runs`` answer like boto3
(timezone-aware datetimes, ``ClientError`` with Glue's codes), from any process.

A run whose runner died without a result (killed, machine rebooted) is reported FAILED on the next
read, so no run stays RUNNING forever: the runner holds a lock file while it lives, and its pid is
checked with ``os.kill(pid, 0)``.

Run ids look like Glue's (``jr_`` + 64 hex digits) but start with the start time in nanoseconds, so
their order is the start order.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ParamValidationError

from . import job_runner
from .glue_errors import check_max_results, client_error
from .job_runner import (
    ACTIVE_STATES,
    LOCAL,
    TERMINAL_STATES,
    finish,
    job_lock_path,
    locked,
    now_iso,
    pid_exists,
    read_record,
    run_dir,
    runner_lock_held,
    update_record,
    write_record,
)

GET_JOB_RUNS_MAX_RESULTS = 200  # Glue's largest page, also the default here
STARTING_GRACE_S = 120.0  # a runner that has not marked its run RUNNING by then is taken for dead
_RUN_ID = re.compile(r"^jr_[0-9a-f]{64}$")
_DATETIME_FIELDS = ("StartedOn", "LastModifiedOn", "CompletedOn")
# StartJobRun parameters Glue accepts that mean nothing locally (capacity, workers, security...).
_IGNORED_START_OPTIONS = frozenset({
    "JobRunId", "AllocatedCapacity", "Timeout", "MaxCapacity", "SecurityConfiguration", "NotificationProperty",
    "WorkerType", "NumberOfWorkers", "ExecutionClass", "JobRunQueuingEnabled", "ExecutionRoleSessionPolicy",
})
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `bovespa_assets` is importable from


def _ok(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "ResponseMetadata": {"HTTPStatusCode": 200, "RetryAttempts": 0}}


@dataclass(frozen=True)
class LocalJobDefinition:
    """A job: the Python module Glue would run as its script, and its DefaultArguments.

    ``env`` adds environment variables for the job's processes; a ``PYTHONPATH`` there is put in front
    of the inherited one (use it for a script module outside the installed packages).
    """

    module: str
    default_arguments: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)


class LocalGlueJobs:
    """Glue's StartJobRun / GetJobRun / GetJobRuns / BatchStopJobRun over local runner processes."""

    def __init__(self, home: str | os.PathLike[str], jobs: Mapping[str, LocalJobDefinition],
                 max_concurrent_runs: int = 1):
        if max_concurrent_runs < 1:
            raise ValueError(f"max_concurrent_runs={max_concurrent_runs}: expected at least 1")
        self.home = Path(home).resolve()
        self.runs_root = self.home / "job_runs"
        self.jobs = dict(jobs)
        self.max_concurrent_runs = max_concurrent_runs
        self._runners: dict[str, subprocess.Popen[bytes]] = {}  # runners started here, reaped on reads

    def __repr__(self) -> str:
        return f"LocalGlueJobs({str(self.home)!r}, jobs={sorted(self.jobs)})"

    # -- paths, records ----------------------------------------------------------------------------

    def _definition(self, job_name: str, operation: str) -> LocalJobDefinition:
        definition = self.jobs.get(job_name)
        if definition is None:
            raise client_error("EntityNotFoundException", f"Job {job_name} not found.", operation)
        return definition

    def _record_path(self, job_name: str, run_id: str) -> Path:
        return self.runs_root / job_name / f"{run_id}.json"

    def _run_ids(self, job_name: str) -> list[str]:
        """The job's run ids, newest first."""
        job_dir = self.runs_root / job_name
        if not job_dir.is_dir():
            return []
        return sorted((p.stem for p in job_dir.glob("jr_*.json") if _RUN_ID.match(p.stem)), reverse=True)

    def _reap(self) -> None:
        for run_id, runner in list(self._runners.items()):
            if runner.poll() is not None:
                self._runners.pop(run_id, None)

    def _runner_alive(self, record_path: Path, record: Mapping[str, Any]) -> bool:
        pid = record[LOCAL].get("pid")
        if record["JobRunState"] == "STARTING":
            age = time.time() - datetime.fromisoformat(record["StartedOn"]).timestamp()
            return age < STARTING_GRACE_S and (pid is None or pid_exists(pid))
        return pid is not None and pid_exists(pid) and runner_lock_held(record_path)

    def _load(self, record_path: Path, *, have_lock: bool = False) -> dict[str, Any]:
        """The record, first marked FAILED if its run is active but its runner is gone."""
        record = read_record(record_path)
        if record["JobRunState"] not in ACTIVE_STATES:
            return record
        self._reap()
        if self._runner_alive(record_path, record):
            return record
        if not have_lock:
            with locked(job_lock_path(record_path)):
                return self._load(record_path, have_lock=True)
        # Under the job's lock: a runner writes its final state before it lets go of its lock, so a run
        # still active here with no live runner has lost it.
        pid = record[LOCAL].get("pid")
        if pid is None:
            finish(record, "FAILED", f"local job runner did not start within {STARTING_GRACE_S:.0f} s")
        else:
            finish(record, "FAILED", f"local job process {pid} exited without a result")
        record["LastModifiedOn"] = now_iso()
        write_record(record_path, record)
        return record

    @staticmethod
    def _public(record: Mapping[str, Any]) -> dict[str, Any]:
        """The record as boto3 returns a JobRun: datetimes parsed, absent fields left out, internals dropped."""
        run = {k: v for k, v in record.items() if k != LOCAL and v is not None}
        for name in _DATETIME_FIELDS:
            if name in run:
                run[name] = datetime.fromisoformat(run[name])
        return run

    # -- boto3 Glue API ----------------------------------------------------------------------------

    def start_job_run(self, *, JobName: str, Arguments: Mapping[str, str] | None = None,
                      **options: Any) -> dict[str, Any]:
        operation = "StartJobRun"
        unknown = sorted(set(options) - _IGNORED_START_OPTIONS)
        if unknown:
            raise ParamValidationError(report=f"Unknown parameter in input: {unknown[0]!r}")
        if Arguments is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in Arguments.items()):
            raise ParamValidationError(report="Invalid type for parameter Arguments: keys and values must be str")
        definition = self._definition(JobName, operation)
        run_id = f"jr_{time.time_ns():016x}{secrets.token_hex(24)}"
        record_path = self._record_path(JobName, run_id)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        arguments = {**definition.default_arguments, **(Arguments or {}), "--JOB_NAME": JobName, "--JOB_RUN_ID": run_id}
        now = now_iso()
        record: dict[str, Any] = {
            "Id": run_id,
            "Attempt": 0,
            "JobName": JobName,
            "Arguments": dict(Arguments) if Arguments is not None else None,
            "JobRunState": "STARTING",
            "StartedOn": now,
            "LastModifiedOn": now,
            "CompletedOn": None,
            "ExecutionTime": 0,
            "ErrorMessage": None,
            "PredecessorRuns": [],
            "LogPath": str(run_dir(record_path) / "job.log"),
            LOCAL: {"module": definition.module, "argv": job_runner.glue_argv(arguments), "pid": None},
        }
        with locked(job_lock_path(record_path)):
            active = 0
            for other in self._run_ids(JobName):
                if self._load(self._record_path(JobName, other), have_lock=True)["JobRunState"] in ACTIVE_STATES:
                    active += 1
            if active >= self.max_concurrent_runs:
                raise client_error(
                    "ConcurrentRunsExceededException",
                    f"Concurrent runs exceeded for {JobName}: {active} running, limit {self.max_concurrent_runs}",
                    operation,
                )
            run_dir(record_path).mkdir()
            write_record(record_path, record)
        try:
            with open(record["LogPath"], "ab") as log:
                runner = subprocess.Popen(
                    [sys.executable, "-m", "bovespa_assets.local.job_runner", str(record_path)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, env=self._environment(definition),
                )
        except OSError as exc:
            message = f"could not start the local job runner: {exc}"
            update_record(record_path, lambda r: finish(r, "FAILED", message))
            return _ok({"JobRunId": run_id})
        self._runners[run_id] = runner

        def note_pid(r: dict[str, Any]) -> None:
            if r[LOCAL].get("pid") is None:
                r[LOCAL]["pid"] = runner.pid

        update_record(record_path, note_pid)
        return _ok({"JobRunId": run_id})

    def get_job_run(self, *, JobName: str, RunId: str, PredecessorsIncluded: bool = False) -> dict[str, Any]:
        operation = "GetJobRun"
        self._definition(JobName, operation)
        record_path = self._record_path(JobName, RunId)
        if not _RUN_ID.match(RunId) or not record_path.is_file():
            raise client_error("EntityNotFoundException", f"Job run {RunId} not found.", operation)
        return _ok({"JobRun": self._public(self._load(record_path))})

    def get_job_runs(self, *, JobName: str, NextToken: str | None = None,
                     MaxResults: int | None = None) -> dict[str, Any]:
        """The job's runs, newest first, a page at a time (200 unless MaxResults says less)."""
        operation = "GetJobRuns"
        self._definition(JobName, operation)
        limit = check_max_results(MaxResults, GET_JOB_RUNS_MAX_RESULTS, operation)
        run_ids = self._run_ids(JobName)
        if NextToken is not None:
            after = _read_token(NextToken, operation)
            run_ids = [r for r in run_ids if r < after]
        runs = []
        for run_id in run_ids[:limit]:
            try:
                runs.append(self._public(self._load(self._record_path(JobName, run_id))))
            except FileNotFoundError:  # removed meanwhile
                continue
        response: dict[str, Any] = {"JobRuns": runs}
        if len(run_ids) > limit:
            response["NextToken"] = base64.urlsafe_b64encode(run_ids[limit - 1].encode()).decode()
        return _ok(response)

    def batch_stop_job_run(self, *, JobName: str, JobRunIds: list[str]) -> dict[str, Any]:
        """Stop runs: a running one gets SIGTERM (its runner stops the script and records STOPPED).

        A run already finished is reported in ``Errors`` (a local choice), as is an unknown one.
        """
        operation = "BatchStopJobRun"
        self._definition(JobName, operation)
        submitted, errors = [], []
        for run_id in JobRunIds:
            record_path = self._record_path(JobName, run_id)
            if not _RUN_ID.match(run_id) or not record_path.is_file():
                errors.append(_stop_error(JobName, run_id, "EntityNotFoundException", f"Job run {run_id} not found."))
                continue
            with locked(job_lock_path(record_path)):
                record = self._load(record_path, have_lock=True)
                state = record["JobRunState"]
                if state in TERMINAL_STATES:
                    errors.append(_stop_error(JobName, run_id, "InvalidInputException", f"Job run is {state}."))
                    continue
                if state == "STARTING":  # the runner will find it no longer STARTING and not run the script
                    finish(record, "STOPPED")
                else:
                    record["JobRunState"] = "STOPPING"
                    with contextlib.suppress(ProcessLookupError):  # exited meanwhile: its final state stands
                        os.kill(record[LOCAL]["pid"], signal.SIGTERM)
                record["LastModifiedOn"] = now_iso()
                write_record(record_path, record)
            submitted.append({"JobName": JobName, "JobRunId": run_id})
        return _ok({"SuccessfulSubmissions": submitted, "Errors": errors})

    def get_job(self, *, JobName: str) -> dict[str, Any]:
        definition = self._definition(JobName, "GetJob")
        return _ok({"Job": {
            "Name": JobName,
            "Command": {"Name": "glueetl", "ScriptLocation": f"python -m {definition.module}", "PythonVersion": "3"},
            "DefaultArguments": dict(definition.default_arguments),
            "ExecutionProperty": {"MaxConcurrentRuns": self.max_concurrent_runs},
        }})

    # -- local helpers -----------------------------------------------------------------------------

    def wait(self, JobName: str, RunId: str, timeout_s: float = 600, poll_s: float = 0.2) -> dict[str, Any]:
        """Block until the run is over; returns its final JobRun. Not a boto3 call."""
        deadline = time.monotonic() + timeout_s
        while True:
            run = self.get_job_run(JobName=JobName, RunId=RunId)["JobRun"]
            if run["JobRunState"] in TERMINAL_STATES:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job run {RunId} of {JobName} still {run['JobRunState']} after {timeout_s} s")
            time.sleep(poll_s)

    def _environment(self, definition: LocalJobDefinition) -> dict[str, str]:
        env = {**os.environ, **definition.env}
        paths = [definition.env.get("PYTHONPATH"), _PACKAGE_ROOT, os.environ.get("PYTHONPATH")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env


def _stop_error(job_name: str, run_id: str, code: str, message: str) -> dict[str, Any]:
    return {"JobName": job_name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}


def _read_token(token: str, operation: str) -> str:
    try:
        run_id = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, ValueError, AttributeError):
        run_id = ""
    if not _RUN_ID.match(run_id):
        raise client_error("InvalidInputException", "Invalid NextToken", operation)
    return run_id
