"""All configuration, read from the environment in one place.

The target (``local`` by default, or ``aws``) is chosen by ``BOVESPA_TARGET``, never by editing
code; everything local lives under ``BOVESPA_HOME`` (default ``./.bovespa``), the Dagster instance
included, so the CLI's runs show up in ``dagster dev``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SAMPLE_ARCHIVE = str(Path(__file__).parent / "sample_archive")
SAMPLE_PRICES = str(Path(__file__).parent / "sample_prices")  # the real ^BVSP yfinance CSV (SOURCES.md)
DEFAULT_START_DATE = "2021-09-01"  # before the oldest session of the bundled archive (2021-09-27)
TARGETS = ("local", "aws")


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    target: str
    home: Path
    lake_uri: str
    archive_uri: str
    indices: tuple[str, ...]
    b3_base_url: str
    start_date: str
    offline: bool
    s3_endpoint_url: str | None
    sessions_per_run: int = 500
    refine_sessions_per_run: int = 500
    glue_job_name: str = "bovespa-refine-carteira"
    athena_workgroup: str = "primary"
    athena_output: str = ""  # s3://… for Athena's query results; empty: <lake>/athena-results/
    price_archive_uri: str = SAMPLE_PRICES
    price_symbols: tuple[str, ...] = ("^BVSP",)
    glue_prices_job_name: str = "bovespa-refine-cotacoes"

    @property
    def athena_output_location(self) -> str:
        return self.athena_output or f"{self.lake_uri.rstrip('/')}/athena-results/"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        from .b3.client import DEFAULT_BASE_URL

        env = os.environ if env is None else env
        target = env.get("BOVESPA_TARGET", "local").strip().lower()
        if target not in TARGETS:
            raise ConfigError(f"BOVESPA_TARGET={target!r}: expected one of {', '.join(TARGETS)}")
        home = Path(env.get("BOVESPA_HOME", ".bovespa")).expanduser().resolve()
        lake = env.get("BOVESPA_LAKE") or ""
        if not lake:
            if target == "aws":
                raise ConfigError("BOVESPA_LAKE must name the lake bucket on the aws target (s3://BUCKET)")
            lake = str(home / "lake")
        indices = tuple(i.strip().upper() for i in env.get("BOVESPA_INDICES", "IBOV").split(",") if i.strip())
        if not indices:
            raise ConfigError("BOVESPA_INDICES is empty: name at least one index, e.g. IBOV")
        return cls(
            target=target,
            home=home,
            lake_uri=lake,
            archive_uri=env.get("BOVESPA_ARCHIVE") or SAMPLE_ARCHIVE,
            indices=indices,
            b3_base_url=env.get("BOVESPA_B3_BASE_URL") or DEFAULT_BASE_URL,
            start_date=env.get("BOVESPA_START_DATE") or DEFAULT_START_DATE,
            offline=env.get("BOVESPA_OFFLINE", "0").lower() in ("1", "true", "yes"),
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            sessions_per_run=_positive_int(env, "BOVESPA_SESSIONS_PER_RUN", 500),
            refine_sessions_per_run=_positive_int(env, "BOVESPA_REFINE_SESSIONS_PER_RUN", 500),
            glue_job_name=env.get("BOVESPA_GLUE_JOB_NAME") or "bovespa-refine-carteira",
            athena_workgroup=env.get("BOVESPA_ATHENA_WORKGROUP") or "primary",
            athena_output=_s3_uri(env, "BOVESPA_ATHENA_OUTPUT"),
            price_archive_uri=env.get("BOVESPA_PRICE_ARCHIVE") or SAMPLE_PRICES,
            price_symbols=_symbols(env.get("BOVESPA_PRICE_SYMBOLS", "^BVSP")),
            glue_prices_job_name=env.get("BOVESPA_GLUE_PRICES_JOB_NAME") or "bovespa-refine-cotacoes",
        )


def _s3_uri(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if value and not value.startswith("s3://"):
        raise ConfigError(f"{name}={value!r}: expected an S3 location, s3://bucket/prefix/")
    return value


def _symbols(raw: str) -> tuple[str, ...]:
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in raw.split(",") if s.strip()))
    if not symbols:
        raise ConfigError("BOVESPA_PRICE_SYMBOLS is empty: name at least one Yahoo symbol, e.g. ^BVSP or PETR4.SA")
    return symbols


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name}={raw!r}: expected a whole number of at least 1")
    return int(raw)
