"""Daily OHLCV bars as Yahoo serves them, and the yfinance CSV format the archive keeps them in.

Pure pandas, no Dagster. A bar set is a DataFrame indexed by session date (``datetime.date``) with
Yahoo's own column names, ``Open``, ``High``, ``Low``, ``Close`` (float) and ``Volume`` (int). Close
is yfinance's default ``auto_adjust=True`` close, as in ``yf.download(...).to_csv()``; for an index
such as ^BVSP there is nothing to adjust.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("Open", "High", "Low", "Close")
BAR_COLUMNS = (*PRICE_COLUMNS, "Volume")


class PriceDataError(ValueError):
    """Price input (a file, a response) that cannot be trusted; names the input and the reason."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class Provenance:
    source: str  # "archive-csv" or "yfinance"
    location: str  # file path or request URL
    sha256: str  # of the bytes read (the CSV file, or the bars as Yahoo answered them)
    fetched_at: datetime


def safe_ticker(symbol: str) -> str:
    """The symbol as a path segment and table value: Yahoo's index caret dropped (^BVSP → BVSP)."""
    return symbol.strip().upper().lstrip("^")


def normalize_bars(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Bars indexed by session date with exactly BAR_COLUMNS; rows with no price at all are dropped.

    A row with some prices but not all, a duplicated date, or a negative volume is an error naming
    ``source``: nothing is filled in or guessed.
    """
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns))
        raise PriceDataError(source, f"missing column(s) {', '.join(missing)} (have {have})")
    bars = frame.loc[:, list(BAR_COLUMNS)].copy()
    for column in BAR_COLUMNS:
        bars[column] = pd.to_numeric(bars[column], errors="coerce")
    bars = bars[bars[list(PRICE_COLUMNS)].notna().any(axis=1)]  # Yahoo's empty rows: no trade, no bar
    partial = bars[bars.isna().any(axis=1)]
    if len(partial):
        raise PriceDataError(source, f"incomplete bar on {_day(partial.index[0])} ({len(partial)} such rows)")
    bars.index = [_day(i) for i in bars.index]
    duplicated = bars.index[bars.index.duplicated()]
    if len(duplicated):
        raise PriceDataError(source, f"more than one bar for {duplicated[0]}")
    if (bars["Volume"] < 0).any():
        raise PriceDataError(source, f"negative volume on {bars.index[(bars['Volume'] < 0).to_numpy()][0]}")
    if not np.all(np.mod(bars["Volume"].to_numpy(), 1) == 0):
        raise PriceDataError(source, "volume is not a whole number")
    bars = bars.astype({c: "float64" for c in PRICE_COLUMNS} | {"Volume": "int64"})
    bars.index.name = "Date"
    return bars.sort_index()


def _day(value: object) -> date:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def read_yfinance_csv(source: str, payload: bytes) -> dict[str, pd.DataFrame]:
    """Symbol → bars from a ``yf.download(...).to_csv()`` file (header rows Price / Ticker / Date).

    One file may hold several symbols (yfinance's column MultiIndex). A file without the three
    header rows, with an unparsable date or number, is an error naming the file.
    """
    try:
        frame = pd.read_csv(io.BytesIO(payload), header=[0, 1], index_col=0, skip_blank_lines=True)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PriceDataError(source, f"not a yfinance CSV: {exc}") from None
    names = [str(n) for n in frame.columns.names]
    if names[:2] != ["Price", "Ticker"] or frame.index.name != "Date" or len(frame) == 0:
        first = payload[:60].decode("utf-8", "replace").splitlines()[0] if payload else "(empty file)"
        raise PriceDataError(source, f"not a yfinance CSV (expected header rows Price/Ticker/Date; starts {first!r})")
    frame = frame[frame.index.notna()]
    try:
        frame.index = [date.fromisoformat(str(i)[:10]) for i in frame.index]
    except ValueError as exc:
        raise PriceDataError(source, f"bad date: {exc}") from None
    result = {}
    for symbol in dict.fromkeys(frame.columns.get_level_values(1)):
        per_symbol = frame.xs(symbol, axis=1, level=1)
        for column in per_symbol.columns:
            values = pd.to_numeric(per_symbol[column], errors="coerce")
            bad = per_symbol[column].notna() & values.isna()
            if bad.any():
                raise PriceDataError(source, f"{symbol} {column} on {per_symbol.index[bad.to_numpy()][0]}: "
                                     f"not a number: {per_symbol[column][bad].iloc[0]!r}")
        result[str(symbol).upper()] = normalize_bars(per_symbol, f"{source} ({symbol})")
    return result
