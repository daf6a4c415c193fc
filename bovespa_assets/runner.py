"""Drive the asset graph from the command line: one Dagster run per session, in this process,
recorded in the instance under BOVESPA_HOME so `dagster dev` shows every run afterwards.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from itertools import count
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance, Definitions
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from .assets.prices import raw_prices_key, raw_prices_op_name
from .assets.raw import raw_portfolio_key
from .b3.archive import PortfolioArchive
from .b3.source import today_in_sao_paulo
from .definitions import RAW_JOB, VIEWS_JOB, build_definitions
from .partitions import sessions_between
from .progress import set_progress_sink
from .refine_driver import RefineMixin
from .settings import Settings

DAGSTER_YAML_MARKER = "# Written by bovespa: the Dagster instance shared by the `bovespa` CLI and `dagster dev`."
DAGSTER_YAML = """\
{marker}
telemetry:
  enabled: false
# Dagster's SQLite event log, plus one transaction per batch of asset events (bovespa_assets.event_log):
# a refine backfill records hundreds of materializations at once.
event_log_storage:
  module: bovespa_assets.event_log
  class: BatchingSqliteEventLogStorage
  config:
    base_dir: {event_log_dir}
"""


# A run over a range of sessions announces its plan in one event instead of one per session (on
# SQLite, ~30 ms each); sessions a range run skips are then not marked failed, which is right here.
DAGSTER_ENV = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The persistent instance under BOVESPA_HOME (DAGSTER_HOME wins if the user set one)."""
    os.environ.update(DAGSTER_ENV)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home)))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    wanted = DAGSTER_YAML.format(marker=DAGSTER_YAML_MARKER, event_log_dir=json.dumps(str(home / "history" / "runs")))
    # A user's own dagster.yaml is left alone; one bovespa wrote is brought up to date.
    if not config.exists() or (config.read_text().startswith(DAGSTER_YAML_MARKER) and config.read_text() != wanted):
        config.write_text(wanted)
    return DagsterInstance.get()


# The CLI prints only progress lines; Dagster's full event stream stays in the instance (dagster dev).
PROGRESS_ONLY = {"loggers": {"progress": {}}}


@dataclass
class SessionOutcome:
    session: date
    index: str
    status: str  # "loaded", "missing" or "failed"
    detail: str = ""
    rows: int = 0
    source: str = ""
    seconds: float = 0.0
    run_id: str = ""


@dataclass
class BatchReport:
    outcomes: list[SessionOutcome] = field(default_factory=list)

    def of(self, status: str) -> list[SessionOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.of("failed")


def plan_batches(
    settings: Settings, indices: list[str], start: date, end: date
) -> tuple[list[tuple[list[date], list[str]]], list[SessionOutcome]]:
    """Split [start, end] into runs of at most `sessions_per_run` consecutive sessions.

    A past session can only come from the archive (B3's API serves the current portfolio only), so
    past sessions without an archived file are reported as missing and never attempted; batches with
    nothing to load are not run at all. Returns [(sessions of the run, indices it loads)], missing.
    """
    archive = PortfolioArchive(settings.archive_uri)
    archived = {index: set(archive.sessions(index)) for index in indices}
    today = today_in_sao_paulo()
    first_key = date.fromisoformat(settings.start_date)
    sessions = sessions_between(max(start, first_key), end)
    available = {
        s: [i for i in indices if s in archived[i] or (s >= today and not settings.offline)] for s in sessions
    }
    missing = [
        SessionOutcome(s, i, "missing", f"no archived B3 file in {archive.uri} (B3's API serves only today's)")
        for s in sessions
        for i in indices
        if i not in available[s]
    ]
    loadable = [s for s in sessions if available[s]]
    if not loadable:
        return [], missing
    span = sessions[sessions.index(loadable[0]) : sessions.index(loadable[-1]) + 1]
    batches = []
    for at in range(0, len(span), settings.sessions_per_run):
        chunk = span[at : at + settings.sessions_per_run]
        chunk_indices = [i for i in indices if any(i in available[s] for s in chunk)]
        if chunk_indices:
            batches.append((chunk, chunk_indices))
    return batches, missing


class PricesMixin:
    """Raw prices over a range of sessions: one Dagster run per `sessions_per_run` consecutive sessions."""

    settings: Settings
    instance: DagsterInstance
    job: Any
    echo: Callable[[str], None]

    def backfill_prices(
        self, symbols: list[str], start: date, end: date, only: set[date] | None = None, label: str = "prices"
    ) -> BatchReport:
        """Load the bars of [start, end] (or just the sessions in ``only``); sessions with no bar are missing."""
        first_key = date.fromisoformat(self.settings.start_date)
        wanted = [s for s in sessions_between(max(start, first_key), end) if only is None or s in only]
        report = BatchReport()
        if not wanted:
            return report
        span = sessions_between(wanted[0], wanted[-1])
        size = self.settings.sessions_per_run
        chunks = [span[at : at + size] for at in range(0, len(span), size)]
        chunks = [c for c in chunks if any(s in set(wanted) for s in c)]
        self.echo(f"{label} {wanted[0]}..{wanted[-1]} for {', '.join(symbols)}: {len(wanted)} session(s) "
                  f"in {len(chunks)} run(s)")
        keep = set(wanted)
        done = count(1)
        total = len(wanted) * len(symbols)
        set_progress_sink(lambda line: self.echo(f"  [{next(done):>{len(str(total))}}/{total}] {line}"))
        for chunk in chunks:
            only_here = [s.isoformat() for s in chunk if s in keep]
            ops = {raw_prices_op_name(symbol): {"config": {"only_sessions": only_here if only is not None else []}}
                   for symbol in symbols}
            started = time.perf_counter()
            result = self.job.execute_in_process(
                instance=self.instance,
                asset_selection=[raw_prices_key(symbol) for symbol in symbols],
                tags={ASSET_PARTITION_RANGE_START_TAG: chunk[0].isoformat(),
                      ASSET_PARTITION_RANGE_END_TAG: chunk[-1].isoformat(),
                      "bovespa/cli": "true", "bovespa/prices": f"{start}..{end}"},
                run_config={**PROGRESS_ONLY, "ops": ops},
                raise_on_error=False,
            )
            per_session = (time.perf_counter() - started) / max(len(only_here), 1)
            stored = {(e.materialization.asset_key, e.materialization.partition): e.materialization.metadata
                      for e in result.get_asset_materialization_events()}
            errors = [_without_exception_class(e.event_specific_data.error.message.strip())
                      for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
            nothing_found = [e for e in errors if "no Yahoo bar for any session" in e]
            for session in (date.fromisoformat(s) for s in only_here):
                for symbol in symbols:
                    meta = stored.get((raw_prices_key(symbol), session.isoformat()))
                    if meta is not None:
                        report.outcomes.append(SessionOutcome(
                            session, symbol, "loaded", detail=str(meta["path"].value), rows=1,
                            source=meta["source"].value, seconds=per_session, run_id=result.run_id))
                    elif errors and len(nothing_found) < len(errors):
                        report.outcomes.append(SessionOutcome(session, symbol, "failed", errors[0].splitlines()[0],
                                                              run_id=result.run_id))
                    else:
                        report.outcomes.append(SessionOutcome(session, symbol, "missing", "no Yahoo bar",
                                                              run_id=result.run_id))
        return report


class Runner(RefineMixin, PricesMixin):
    def __init__(self, settings: Settings, echo: Callable[[str], None] = print):
        self.settings = settings
        self.echo = echo
        self.defs: Definitions = build_definitions(settings)
        self.job = self.defs.resolve_job_def(RAW_JOB)
        self.instance = dagster_instance(settings)
        set_progress_sink(lambda line: None)  # backfill() shows progress; a single run prints its outcome

    def run_sessions(
        self, sessions: list[date], indices: list[str], tags: dict[str, str] | None = None
    ) -> list[SessionOutcome]:
        """One Dagster run over the consecutive `sessions` for `indices`; an outcome per (session, index)."""
        first, last = sessions[0].isoformat(), sessions[-1].isoformat()
        started = time.perf_counter()
        result = self.job.execute_in_process(
            instance=self.instance,
            asset_selection=[raw_portfolio_key(i) for i in indices],
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first,
                ASSET_PARTITION_RANGE_END_TAG: last,
                "bovespa/cli": "true",
                **(tags or {}),
            },
            run_config=PROGRESS_ONLY,
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        materialized = {}
        for event in result.get_asset_materialization_events():
            mat = event.materialization
            materialized[(mat.asset_key, mat.partition)] = mat.metadata
        errors = [
            _without_exception_class(event.event_specific_data.error.message.strip())
            for event in result.all_events
            if event.event_type == DagsterEventType.STEP_FAILURE
        ]
        per_session = seconds / max(len(materialized), 1)
        outcomes = []
        for session in sessions:
            for index in indices:
                meta = materialized.get((raw_portfolio_key(index), session.isoformat()))
                if meta is not None:
                    outcomes.append(SessionOutcome(
                        session, index, "loaded", detail=str(meta["path"].value),
                        rows=meta["dagster/row_count"].value, source=meta["source"].value,
                        seconds=per_session, run_id=result.run_id,
                    ))
                    continue
                error = next((line for e in errors for line in e.splitlines() if str(session) in line), None)
                if error is None and len(sessions) == 1 and errors:
                    error = errors[0].splitlines()[0]
                status = "failed" if error else "missing"
                detail = error or "no publication for this session"
                outcomes.append(SessionOutcome(session, index, status, detail, run_id=result.run_id))
        return outcomes

    def refresh_views(self) -> ViewsReport:
        """One Dagster run of the view assets and charts (what the automation sensor would start)."""
        set_progress_sink(lambda line: None)
        result = self.defs.resolve_job_def(VIEWS_JOB).execute_in_process(
            instance=self.instance, tags={"bovespa/cli": "true"}, run_config=PROGRESS_ONLY, raise_on_error=False,
        )
        report = ViewsReport(success=result.success, run_id=result.run_id)
        for event in result.all_events:
            if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                mat = event.materialization
                meta = mat.metadata
                if "dagster/row_count" in meta:
                    report.rows[mat.asset_key.path[-1]] = meta["dagster/row_count"].value
                report.paths.update({k: str(v.value) for k, v in meta.items() if k.endswith("_png")})
            elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
                evaluation = event.event_specific_data
                report.checks[evaluation.check_name] = evaluation.passed
            elif event.event_type == DagsterEventType.ASSET_OBSERVATION:
                skipped = event.asset_observation_data.asset_observation.metadata.get("skipped")
                if skipped is not None:
                    report.skipped.append(str(skipped.value))
        return report

    def backfill(self, indices: list[str], start: date, end: date, label: str = "backfill") -> BatchReport:
        batches, missing = plan_batches(self.settings, indices, start, end)
        report = BatchReport(outcomes=list(missing))
        missing_pairs: dict[date, set[str]] = {}
        for m in missing:
            missing_pairs.setdefault(m.session, set()).add(m.index)
        to_load = sum(1 for sessions, ix in batches for s in sessions for i in ix if i not in missing_pairs.get(s, ()))
        self.echo(
            f"{label} {start}..{end} for {', '.join(indices)}: {len(batches)} run(s) of up to "
            f"{self.settings.sessions_per_run} sessions; {len(missing)} (session, index) pair(s) have no data"
        )
        tag = {"bovespa/backfill": f"{start}..{end}"}
        done = count(1)
        set_progress_sink(lambda line: self.echo(f"  [{next(done):>{len(str(to_load))}}/{to_load}] {line}"))
        for number, (sessions, batch_indices) in enumerate(batches, start=1):
            self.echo(f"run {number}/{len(batches)}: {sessions[0]}..{sessions[-1]} ({', '.join(batch_indices)})")
            for outcome in self.run_sessions(sessions, batch_indices, tag):
                if outcome.status == "missing":
                    continue  # gaps inside a run's span are already in the plan's missing list
                report.outcomes.append(outcome)
                if outcome.status == "failed":
                    self.echo(format_outcome(outcome, "  "))
        return report


@dataclass
class ViewsReport:
    """What a views refresh did: rows per materialized asset, check results, skip reasons."""

    success: bool
    rows: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)
    run_id: str = ""

    def lines(self) -> list[str]:
        out = [f"views: {', '.join(f'{k} {n:,} rows' for k, n in self.rows.items()) or 'none created'}"]
        if self.checks:
            failed = [name for name, ok in self.checks.items() if not ok]
            out.append(f"view checks: {len(self.checks) - len(failed)} passed, {len(failed)} failed"
                       + (f" ({', '.join(failed)})" if failed else ""))
        out += [f"views: {reason}" for reason in self.skipped]
        out += [f"chart: {path}" for path in self.paths.values()]
        if not self.success:
            out.append(f"views: run {self.run_id} FAILED (see bovespa dev)")
        return out


def _without_exception_class(message: str) -> str:
    """'dagster._core.definitions.events.Failure: IBOV ...' -> 'IBOV ...' (the reason is the news)."""
    return re.sub(r"^[\w.]+(?:Error|Failure|Exception): ", "", message)


def format_outcome(outcome: SessionOutcome, prefix: str = "") -> str:
    head = f"{prefix} {outcome.session} {outcome.index}".strip()
    if outcome.status == "loaded":
        return f"{head} ok      {outcome.rows:>3} rows from {outcome.source} ({outcome.seconds:.2f}s)"
    return f"{head} {outcome.status.upper():<7} {outcome.detail}"
