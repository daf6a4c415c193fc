"""The raw prices table: Yahoo's own field names, one file per ticker and session.

``raw/cotacoes/ticker=<TICKER>/data_pregao=<YYYY-MM-DD>/part-00000.parquet``. ``TICKER`` is the
Yahoo symbol made safe for a path (``^BVSP`` → ``BVSP``, see ``yahoo.prices.safe_ticker``); the
symbol itself is kept in the file (``simbolo``). The contract's names (``preco_abertura`` …) are
given by the refine step.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa

from .yahoo.prices import Provenance

RAW_COTACOES_SCHEMA = pa.schema(
    [
        pa.field("simbolo", pa.string(), nullable=False),
        pa.field("Open", pa.float64(), nullable=False),
        pa.field("High", pa.float64(), nullable=False),
        pa.field("Low", pa.float64(), nullable=False),
        pa.field("Close", pa.float64(), nullable=False),
        pa.field("Volume", pa.int64(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_location", pa.string(), nullable=False),
        pa.field("source_sha256", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def bar_to_table(symbol: str, session: date, bar: pd.Series, provenance: Provenance) -> pa.Table:
    columns = {
        "simbolo": [symbol],
        **{name: [float(bar[name])] for name in ("Open", "High", "Low", "Close")},
        "Volume": [int(bar["Volume"])],
        "source": [provenance.source],
        "source_location": [provenance.location],
        "source_sha256": [provenance.sha256],
        "fetched_at": [provenance.fetched_at],
    }
    metadata = {b"simbolo": symbol.encode(), b"data_pregao": session.isoformat().encode()}
    return pa.table(columns, schema=RAW_COTACOES_SCHEMA.with_metadata(metadata))


def ohlc_problems(table: pa.Table) -> list[str]:
    """What makes a stored bar impossible: a price not above zero, Low/High not bounding Open and Close."""
    problems = []
    for row in table.to_pylist():
        prices = [row["Open"], row["High"], row["Low"], row["Close"]]
        if min(prices) <= 0:
            problems.append("a price is not above zero")
        if row["Low"] > min(row["Open"], row["Close"]) or row["High"] < max(row["Open"], row["Close"]):
            problems.append(f"Low {row['Low']} / High {row['High']} do not bound "
                            f"Open {row['Open']} and Close {row['Close']}")
    return problems
