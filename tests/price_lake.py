"""Helpers for the price tests: raw price partitions from the real ^BVSP CSV, written as the raw asset does.

No Dagster: ``Lake.write_table`` of ``bar_to_table`` for each B3 session that has a Yahoo bar.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from bovespa_assets.lake import Lake, price_partition_dir
from bovespa_assets.partitions import sessions_between
from bovespa_assets.price_table import bar_to_table
from bovespa_assets.settings import SAMPLE_PRICES
from bovespa_assets.yahoo.archive import PriceArchive
from bovespa_assets.yahoo.prices import read_yfinance_csv

BVSP_CSV = Path(SAMPLE_PRICES) / "BVSP_yfinance_2008-01-02_2025-06-27.csv"


def real_bvsp() -> pd.DataFrame:
    """Every real ^BVSP bar, read independently of the pipeline's reader (plain pandas)."""
    frame = pd.read_csv(BVSP_CSV, header=[0, 1], index_col=0)
    frame.columns = frame.columns.droplevel(1)
    frame.index = [date.fromisoformat(d) for d in frame.index]
    return frame


def write_raw_prices(root: Path | str, start: date, end: date, skip: tuple[date, ...] = ()) -> list[date]:
    """Raw ^BVSP partitions for the B3 sessions in [start, end] that have a bar; returns them."""
    archive = PriceArchive(SAMPLE_PRICES)
    lake = Lake(str(root))
    written = []
    [(bars, provenance)] = archive.bars("^BVSP", start, end)
    for session in sessions_between(start, end):
        if session in skip or session not in bars.index:
            continue
        table = bar_to_table("^BVSP", session, bars.loc[session], provenance)
        lake.write_table(price_partition_dir("BVSP", session), table)
        written.append(session)
    return written


__all__ = ["BVSP_CSV", "read_yfinance_csv", "real_bvsp", "write_raw_prices"]
