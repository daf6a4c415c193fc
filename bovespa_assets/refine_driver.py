"""The refine half of a CLI command, driven to completion synchronously.

It takes the same path as the sensors: S3-shaped events for the raw objects → the Lambda handler →
a Glue job run (local Spark or AWS Glue), then records the finished runs in the Dagster instance
exactly as the sensors would, skipping runs already recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from dagster import DagsterInstance, Definitions

from .event_log import report_asset_events
from .lake import RAW_CARTEIRA, RAW_COTACOES, Lake
from .local.raw_events import deliver, session_of
from .observe import unobserved_catalog_events, unreported_run_events
from .settings import Settings


class RefineMixin:
    """The refine half of a CLI command: the same event → Lambda handler → Glue job path as the
    sensors, driven to completion synchronously, then recorded in the instance like the sensors do."""

    settings: Settings
    defs: Definitions
    instance: DagsterInstance
    echo: Callable[[str], None]

    def refine(self, sessions: list[date], datasets: list[str] | None = None) -> list[dict]:
        """Deliver the raw objects of ``sessions`` (under ``datasets``, raw prefixes; default all) and wait."""
        refine = self.defs.resources["refine"]
        ledger = refine.ledger()
        if ledger is None:
            self.echo("refine: on this target the S3 notification starts the Glue job; the sensors record it")
            return []
        store = Lake(self.settings.lake_uri, self.settings.s3_endpoint_url)
        wanted = {s.isoformat() for s in sessions}
        prefixes = [RAW_CARTEIRA, RAW_COTACOES] if datasets is None else datasets
        files = [i for prefix in prefixes for i in store.list_files(prefix)
                 if i.path.endswith(".parquet") and session_of(i) in wanted]
        jobs, started = refine.jobs(), []
        for batch, _objects, result in deliver(store, files, jobs, ledger, refine.routes(),
                                              self.settings.refine_sessions_per_run):
            for run in result["runs"]:
                started.append((run["job_name"], run["job_run_id"]))
                self.echo(f"refine: glue run {run['job_run_id']} of {run['job_name']} started for "
                          f"{len(run['sessions'])} session(s) {batch[0]}..{batch[-1]}")
            if not result["runs"]:
                self.echo(f"refine: {batch[0]}..{batch[-1]} already delivered to the jobs (no new raw objects)")
        finals = []
        for job_name, run_id in started:  # the jobs' runs go on in parallel; wait for each in turn
            run = {"JobName": job_name, **jobs.wait(job_name, run_id, timeout_s=3600)}
            finals.append(run)
            error = f": {run.get('ErrorMessage')}" if run.get("ErrorMessage") else ""
            self.echo(f"refine: glue run {run_id} {run.get('JobRunState')} in {run.get('ExecutionTime', 0)}s{error}")
        self.record_refine_runs(finals)
        return finals

    def record_refine_runs(self, runs: list[dict]) -> int:
        """Report finished runs to the instance as the sensors would (skipping any already reported)."""
        refine = self.defs.resources["refine"]
        store = Lake(self.settings.lake_uri, self.settings.s3_endpoint_url)
        count = 0
        for run in runs:
            events = unreported_run_events(self.instance, store, run, refine)
            events += unobserved_catalog_events(self.instance, store, run, refine)
            report_asset_events(self.instance, events)
            count += len(events)
        return count
