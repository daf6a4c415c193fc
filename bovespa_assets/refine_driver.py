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
from .lake import RAW_CARTEIRA, Lake
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

    def refine(self, sessions: list[date]) -> list[dict]:
        refine = self.defs.resources["refine"]
        ledger = refine.ledger()
        if ledger is None:
            self.echo("refine: on this target the S3 notification starts the Glue job; the sensors record it")
            return []
        store = Lake(self.settings.lake_uri, self.settings.s3_endpoint_url)
        wanted = {s.isoformat() for s in sessions}
        files = [i for i in store.list_files(RAW_CARTEIRA) if i.path.endswith(".parquet") and session_of(i) in wanted]
        jobs, started = refine.jobs(), []
        for batch, objects, result in deliver(store, files, jobs, ledger, refine.job_name,
                                              self.settings.refine_sessions_per_run):
            if result.get("job_run_id"):
                started.append(result["job_run_id"])
                self.echo(f"refine: glue run {result['job_run_id']} started for {len(result['sessions'])} "
                          f"session(s) {batch[0]}..{batch[-1]} ({objects} raw objects)")
            else:
                self.echo(f"refine: {batch[0]}..{batch[-1]} already delivered to the job (no new raw objects)")
        finals = []
        for run_id in started:
            run = jobs.wait(refine.job_name, run_id, timeout_s=3600)
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
