"""Yahoo's daily bars through yfinance (its v8 chart API), for live and past sessions alike.

Yahoo serves history, so unlike B3's API a past session can be fetched (and backfilled) live. The
HTTP session is yfinance's own (curl_cffi) unless one is given: tests give a ``requests.Session``
that sends Yahoo's URLs to a local server replaying recorded chart answers.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from .prices import PriceDataError, Provenance, normalize_bars

CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{symbol}"
_LOCK = threading.Lock()  # yfinance keeps one process-wide session and cache location


class YahooClient:
    def __init__(self, session: Any = None, timeout_s: float = 15.0, cache_dir: str | None = None):
        self.session = session
        self.timeout_s = timeout_s
        self.cache_dir = cache_dir

    def history(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, Provenance]:
        """Daily bars of ``symbol`` for sessions in [start, end]; an empty frame when Yahoo has none."""
        import yfinance as yf
        from yfinance.exceptions import YFPricesMissingError, YFTzMissingError

        where = f"{CHART_URL.format(symbol=symbol)}?interval=1d&start={start}&end={end}"
        with _LOCK:
            if self.cache_dir:
                Path(self.cache_dir).mkdir(parents=True, exist_ok=True)
                yf.set_tz_cache_location(self.cache_dir)  # tz, cookie and ISIN caches
            hide = yf.config.debug.hide_exceptions
            yf.config.debug.hide_exceptions = False  # errors come back as exceptions, not log lines
            try:
                frame = yf.Ticker(symbol, session=self.session).history(
                    start=start.isoformat(), end=(end + timedelta(days=1)).isoformat(), interval="1d",
                    auto_adjust=True, actions=False, timeout=self.timeout_s,
                )
            except YFPricesMissingError:
                frame = pd.DataFrame(columns=["Open", "High", "Low", "Close", "Volume"])
            except YFTzMissingError as exc:
                raise PriceDataError(where, f"Yahoo does not know the symbol {symbol!r} ({exc})") from None
            except Exception as exc:  # network, HTTP status, malformed answer: yfinance's own message
                raise PriceDataError(where, f"{type(exc).__name__}: {exc}") from None
            finally:
                yf.config.debug.hide_exceptions = hide
        bars = normalize_bars(frame, where)
        bars = bars[(bars.index >= start) & (bars.index <= end)]
        digest = hashlib.sha256(bars.to_csv().encode()).hexdigest()
        return bars, Provenance("yfinance", where, digest, datetime.now(UTC))
