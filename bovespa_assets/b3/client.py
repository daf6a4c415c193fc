"""Client for B3's index portfolio endpoints (``indexProxy/indexCall``).

B3 takes the request as base64 of a JSON payload in the URL path. ``GetPortfolioDay`` pages its
rows; ``GetDownloadPortfolioDay`` answers with base64 of the latin-1 CSV. Only the *current*
portfolio is served: past sessions come from an archive (see ``archive.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .parse import PT_BR, load_json, parse_portfolio_csv, parse_portfolio_json
from .snapshot import B3DataError, PortfolioSnapshot, Provenance

DEFAULT_BASE_URL = "https://sistemaswebb3-listados.b3.com.br/indexProxy/indexCall"
log = logging.getLogger(__name__)


class B3ApiError(RuntimeError):
    """B3 could not be reached or kept failing after the retries; names the URL."""


def encode_payload(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


class B3Client:
    """Fetches the current portfolio of an index; retries timeouts, 5xx and 429 with backoff."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        timeout_s: float = 15.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        page_size: int = 120,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.page_size = page_size
        self.session = session or requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_s,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.session.headers.setdefault("User-Agent", "bovespa-assets (+https://github.com/)")

    def _get(self, url: str) -> bytes:
        try:
            response = self.session.get(url, timeout=self.timeout_s)
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise B3ApiError(f"GET {url}: {reason} after {self.retries + 1} attempts ({exc})") from exc
        if response.status_code != 200:
            # only 429/5xx are retried: count the attempts really made (a 404 is not retried)
            history = getattr(getattr(response.raw, "retries", None), "history", ())
            attempts = len(history) + 1
            raise B3ApiError(
                f"GET {url}: HTTP {response.status_code} after {attempts} attempt{'s' if attempts > 1 else ''}"
            )
        return response.content  # raw bytes: decoded by parse.decode, not by requests' guess

    def portfolio_url(self, index: str, page: int, segment: int, language: str) -> str:
        payload = {
            "language": language,
            "pageNumber": page,
            "pageSize": self.page_size,
            "index": index.upper(),
            "segment": str(segment),
        }
        return f"{self.base_url}/GetPortfolioDay/{encode_payload(payload)}"

    def portfolio_day(self, index: str, segment: int = 2, language: str = PT_BR) -> PortfolioSnapshot:
        """The current portfolio, all pages merged; segment=2 brings each asset's sector."""
        fetched_at = datetime.now(UTC)
        first_url = self.portfolio_url(index, 1, segment, language)
        bodies = [self._get(first_url)]
        document = load_json(bodies[0], first_url)
        pages = int((document.get("page") or {}).get("totalPages") or 1)
        results = list(document.get("results") or [])
        for page in range(2, pages + 1):
            url = self.portfolio_url(index, page, segment, language)
            log.info("GetPortfolioDay %s page %d/%d", index, page, pages)
            body = self._get(url)
            bodies.append(body)
            extra = load_json(body, url)
            if (extra.get("header") or {}).get("date") != (document.get("header") or {}).get("date"):
                raise B3DataError(url, "B3 changed the portfolio while its pages were read; try again")
            results.extend(extra.get("results") or [])
        merged = {**document, "results": results}
        provenance = Provenance.of("b3-api", first_url, b"".join(bodies), fetched_at)
        return parse_portfolio_json(merged, index, first_url, provenance)

    def download_portfolio_csv(self, index: str, language: str = PT_BR) -> PortfolioSnapshot:
        """The CSV download: the body is base64 (sometimes JSON-quoted) of the latin-1 CSV."""
        payload = encode_payload({"index": index.upper(), "language": language})
        url = f"{self.base_url}/GetDownloadPortfolioDay/{payload}"
        body = self._get(url).strip()
        if body.startswith(b"<"):
            return parse_portfolio_csv(body, url)  # raises the HTML-page error with the URL
        try:
            csv_bytes = base64.b64decode(body.strip(b'"'), validate=True)
        except (binascii.Error, ValueError):
            raise B3DataError(url, "GetDownloadPortfolioDay body is not base64 of a CSV") from None
        return parse_portfolio_csv(csv_bytes, url, Provenance.of("b3-api", url, csv_bytes))
