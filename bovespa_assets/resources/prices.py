from __future__ import annotations

from dagster import ConfigurableResource

from ..yahoo.archive import PriceArchive
from ..yahoo.client import YahooClient
from ..yahoo.source import PriceSource


class YahooPricesResource(ConfigurableResource):
    """Where daily bars come from: an archive of yfinance CSVs first, then Yahoo through yfinance.

    ``cache_dir``: yfinance's time-zone and cookie caches (under BOVESPA_HOME, not the user's home).
    """

    archive_uri: str | None = None
    offline: bool = False
    timeout_s: float = 15.0
    cache_dir: str | None = None

    def source(self) -> PriceSource:
        archive = PriceArchive(self.archive_uri) if self.archive_uri else None
        client = None if self.offline else YahooClient(timeout_s=self.timeout_s, cache_dir=self.cache_dir)
        return PriceSource(archive, client)
