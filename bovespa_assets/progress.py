"""A Dagster logger that prints one line per stored session: the CLI's live progress.

It formats the ASSET_MATERIALIZATION events Dagster already routes to every logger, so progress
costs no extra event in the instance, and a CLI run reads as a progress list instead of Dagster's
event stream (still stored in full and shown by `dagster dev`).
"""

import logging
from collections.abc import Callable

from dagster import DagsterEventType, InitLoggerContext, logger

_sink: list[Callable[[str], None]] = [print]


def set_progress_sink(sink: Callable[[str], None]) -> None:
    _sink[0] = sink


def describe_materialization(event) -> str | None:
    """'2025-02-03 IBOV ok   87 rows from archive-csv' for a raw materialization event, else None."""
    if event is None or event.event_type != DagsterEventType.ASSET_MATERIALIZATION:
        return None
    materialization = event.materialization
    meta = materialization.metadata
    rows = meta.get("dagster/row_count")
    source = meta.get("source")
    name = materialization.asset_key.path[-1].removeprefix("carteira_").upper()
    close = meta.get("close")
    detail = f"{rows.value:>4} rows" if rows else (f"close {close.value:,.2f}" if close else "stored")
    return f"{materialization.partition} {name} ok {detail}" + (f" from {source.value}" if source else "")


class _ProgressHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        line = describe_materialization(meta.get("dagster_event"))
        if line:
            _sink[0](line)


@logger(description="Prints one line per session stored (used by the bovespa CLI).")
def progress_logger(_: InitLoggerContext) -> logging.Logger:
    log = logging.Logger("bovespa.progress", level=logging.DEBUG)
    log.addHandler(_ProgressHandler())
    return log
