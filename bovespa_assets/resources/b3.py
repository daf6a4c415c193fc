from __future__ import annotations

from dagster import ConfigurableResource

from ..b3.archive import PortfolioArchive
from ..b3.client import DEFAULT_BASE_URL, B3Client
from ..b3.source import PortfolioSource


class B3PortfolioResource(ConfigurableResource):
    """Where portfolios come from: an archive of B3 files first, then B3's live API.

    ``live_retries``/``live_retry_wait_s``: when B3 still serves the previous session, the run is
    retried this many times, this far apart, instead of storing the wrong day.
    """

    archive_uri: str | None = None
    base_url: str = DEFAULT_BASE_URL
    offline: bool = False
    timeout_s: float = 15.0
    http_retries: int = 4
    live_retries: int = 8
    live_retry_wait_s: int = 1800

    def source(self) -> PortfolioSource:
        archive = PortfolioArchive(self.archive_uri) if self.archive_uri else None
        client = None if self.offline else B3Client(self.base_url, self.timeout_s, self.http_retries)
        return PortfolioSource(archive, client)
