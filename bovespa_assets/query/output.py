"""Query results as text for people (table), spreadsheets (csv) and programs (json)."""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

import pandas as pd

FORMATS = ("table", "csv", "json")


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars unwrapped, NaN/NaT as null, dates as ISO text."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def render(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":
        records = [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]
        return json.dumps(records, ensure_ascii=False, indent=2)
    if fmt == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "table":
        if frame.empty:
            return ("  ".join(map(str, frame.columns)) + "\n(no rows)") if len(frame.columns) else "(no result)"
        return frame.to_string(index=False)
    raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
