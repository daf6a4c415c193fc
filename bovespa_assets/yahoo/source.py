"""Which bars serve a range of sessions: the archive of yfinance CSVs first, then Yahoo live.

Sessions with no bar anywhere are simply absent from the answer: the caller reports them as
missing, nothing is filled in.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from .archive import PriceArchive
from .client import YahooClient
from .prices import PriceDataError, Provenance


class PriceSource:
    def __init__(self, archive: PriceArchive | None, client: YahooClient | None):
        self.archive = archive
        self.client = client

    def bars(self, symbol: str, sessions: list[date]) -> dict[date, tuple[pd.Series, Provenance]]:
        """Session → (bar, provenance) for the sessions that have one; one live request at most."""
        wanted = sorted(set(sessions))
        if not wanted:
            return {}
        found: dict[date, tuple[pd.Series, Provenance]] = {}
        if self.archive is not None:
            for bars, provenance in self.archive.bars(symbol, wanted[0], wanted[-1]):
                for day, bar in bars.iterrows():
                    if day not in wanted:
                        continue
                    if day in found and not found[day][0].equals(bar):
                        raise PriceDataError(
                            provenance.location,
                            f"{symbol} {day}: differs from the bar in {found[day][1].location}",
                        )
                    found.setdefault(day, (bar, provenance))
        rest = [d for d in wanted if d not in found]
        if rest and self.client is not None:
            bars, provenance = self.client.history(symbol, rest[0], rest[-1])
            for day, bar in bars.iterrows():
                if day in rest:
                    found[day] = (bar, provenance)
        return found
