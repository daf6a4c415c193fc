"""Recording many asset events at once in the local Dagster instance.

A refine backfill reports one materialization per table and session: 750 events for 250 sessions.
Dagster's SQLite event log stores each event on its own (two fresh engines, two commits each),
~30-40 ms apiece here, so recording took longer than refining. :class:`BatchingSqliteEventLogStorage`
is the stock SQLite storage plus a ``store_event_batch`` that writes a batch in one transaction per
database file; the instance under ``BOVESPA_HOME`` is configured with it (see ``runner.DAGSTER_YAML``),
and :func:`report_asset_events` hands it whole batches. Any other storage (a user's own
``dagster.yaml``, Postgres) gets the same events through its own ``store_event_batch``.
"""

import logging
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from dagster import AssetCheckEvaluation, AssetMaterialization, AssetObservation, DagsterInstance
from dagster._core.events import (
    ASSET_EVENTS,
    AssetObservationData,
    DagsterEvent,
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.events.log import EventLogEntry
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._time import get_current_timestamp

AssetEvent = AssetMaterialization | AssetObservation | AssetCheckEvaluation


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, storing a batch of asset events in one transaction per database."""

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> "BatchingSqliteEventLogStorage":
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Consecutive asset events of one run in two transactions; anything else the stock way, in order."""
        for (batched, run_id), group in groupby(events, key=lambda e: (_is_asset_event(e), e.run_id)):
            if not batched:
                for event in group:
                    self.store_event(event)
                continue
            batch = list(group)
            statements = [self.prepare_insert_event(event) for event in batch]
            with self.run_connection(run_id) as conn:
                for statement in statements:
                    conn.execute(statement)
            # Mirrored into the cross-run index, as SqliteEventLogStorage.store_event does per event.
            with self.index_transaction() as conn:
                for event, statement in zip(batch, statements, strict=True):
                    with db_result(conn, statement) as result:
                        event_id = result.inserted_primary_key[0]
                    self._store_asset_event_tags(conn, [event], [event_id])
                    self._store_asset_event(conn, event, event_id)


def _is_asset_event(event: EventLogEntry) -> bool:
    """Materializations and observations (and their planned events): the ones SQLite mirrors into its index."""
    return bool(event.is_dagster_event and event.dagster_event_type in ASSET_EVENTS and event.dagster_event.asset_key)


def _entry(event: AssetEvent) -> EventLogEntry:
    """The log entry Dagster's ``report_runless_asset_event`` would store for ``event``."""
    if isinstance(event, AssetMaterialization):
        kind, payload = DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(event)
    elif isinstance(event, AssetObservation):
        kind, payload = DagsterEventType.ASSET_OBSERVATION, AssetObservationData(event)
    elif isinstance(event, AssetCheckEvaluation):
        kind, payload = DagsterEventType.ASSET_CHECK_EVALUATION, event
    else:
        raise TypeError(f"not an asset event: {event!r}")
    dagster_event = DagsterEvent(event_type_value=kind.value, event_specific_data=payload, job_name=RUNLESS_JOB_NAME)
    return EventLogEntry(
        user_message="",
        level=logging.INFO,
        job_name=RUNLESS_JOB_NAME,
        run_id=RUNLESS_RUN_ID,
        error_info=None,
        timestamp=get_current_timestamp(),
        step_key=None,
        dagster_event=dagster_event,
    )


def report_asset_events(instance: DagsterInstance, events: Sequence[AssetEvent]) -> None:
    """Record run-less asset events as ``instance.report_runless_asset_event`` would, in one batch."""
    if events:
        instance.event_log_storage.store_event_batch([_entry(event) for event in events])
