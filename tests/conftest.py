"""Shared test helpers: where the real B3 files live.

Every file listed here is a byte-exact copy of a real B3 publication (see
/work/shared/data/SOURCES.md for provenance); tests copy them to ``tmp_path`` before altering them.
Test modules import the constants directly (``from conftest import SAMPLE_ARCHIVE``) when they need
them at collection time, e.g. for ``pytest.mark.parametrize``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bovespa_assets import settings

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
SAMPLE_ARCHIVE = Path(settings.SAMPLE_ARCHIVE)


def real_b3_files() -> list[Path]:
    """Every real B3 file in the repo: sample-archive IBOV CSVs, the saved API JSON, IBXX fixtures."""
    return [
        *sorted((SAMPLE_ARCHIVE / "IBOV").glob("*.csv")),
        *sorted((SAMPLE_ARCHIVE / "api").glob("*.json")),
        *sorted((FIXTURES / "b3" / "IBXX").glob("*.csv")),
    ]


@pytest.fixture
def sample_archive() -> Path:
    return SAMPLE_ARCHIVE


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="module")
def moto_endpoint():
    """A moto server (every AWS API moto has) on a free local port, one per test module that asks for it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
