"""Which publication serves a session: the archive, else B3's live API, else a clear refusal.

B3's API serves only the current portfolio, so it is asked only for today's or a coming session,
and its answer is kept only if it carries exactly the session asked for: today's portfolio is
never stored under yesterday's key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .archive import PortfolioArchive
from .client import B3Client
from .snapshot import PortfolioSnapshot

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


class SessionNotAvailable(LookupError):
    """No publication can serve this session (permanent: retrying will not help)."""


class NotYetPublished(RuntimeError):
    """B3 still serves an earlier session; its portfolio for this one is due later (retry)."""


def today_in_sao_paulo() -> date:
    return datetime.now(SAO_PAULO).date()


class PortfolioSource:
    def __init__(
        self,
        archive: PortfolioArchive | None,
        client: B3Client | None,
        today: Callable[[], date] = today_in_sao_paulo,
    ):
        self.archive = archive
        self.client = client
        self.today = today

    def fetch(self, index: str, session: date) -> PortfolioSnapshot:
        index = index.upper()
        if self.archive is not None:
            snapshot = self.archive.find(index, session)
            if snapshot is not None:
                return snapshot
        where = f"archive {self.archive.uri}" if self.archive else "no archive configured"
        if session < self.today():
            raise SessionNotAvailable(
                f"{index} {session}: no archived B3 file for this session ({where}). B3's API serves only "
                "the current portfolio; past sessions come from an archive of B3 files "
                "(CSV downloads or saved GetPortfolioDay responses), set with --archive or BOVESPA_ARCHIVE."
            )
        if self.client is None:
            raise SessionNotAvailable(f"{index} {session}: not in the {where}, and offline mode forbids the live API")
        snapshot = self.client.portfolio_day(index)
        if snapshot.data_pregao < session:
            raise NotYetPublished(
                f"{index} {session}: B3 still serves the portfolio of {snapshot.data_pregao}; "
                f"the one for {session} is not published yet"
            )
        if snapshot.data_pregao > session:
            raise SessionNotAvailable(
                f"{index} {session}: B3 already serves the portfolio of {snapshot.data_pregao}; "
                f"{session} must come from an archive"
            )
        return snapshot
