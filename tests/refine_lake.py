"""Helpers for the refine tests: a raw lake from the real B3 files, and the refined tables read back.

No Dagster: the raw partitions are written exactly as the raw asset writes them (``Lake.write_table``
of ``snapshot_to_table``), from the bundled IBOV archive and the IBXX fixtures.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.lake import RAW_CARTEIRA, Lake, partition_dir
from bovespa_assets.raw_table import snapshot_to_table
from bovespa_assets.refine.tables import TableDef
from bovespa_assets.settings import SAMPLE_ARCHIVE

IBXX_ARCHIVE = str(Path(__file__).parent / "fixtures" / "b3")
ARCHIVES = {"IBOV": SAMPLE_ARCHIVE, "IBXX": IBXX_ARCHIVE}


def archive_sessions(index: str) -> list[date]:
    return PortfolioArchive(ARCHIVES[index]).sessions(index)


def write_raw(root: Path | str, index: str, sessions: Iterable[date] | None = None) -> list[date]:
    """Raw partitions for ``index`` (all its archived sessions unless given); returns the sessions written."""
    archive = PortfolioArchive(ARCHIVES[index])
    lake = Lake(str(root))
    days = sorted(sessions) if sessions is not None else archive.sessions(index)
    for day in days:
        snapshot = archive.find(index, day)
        assert snapshot is not None, f"no archived {index} file for {day}"
        lake.write_table(partition_dir(RAW_CARTEIRA, index, day), snapshot_to_table(snapshot))
    return days


def raw_path(root: Path | str, index: str, day: date) -> Path:
    return Path(root) / partition_dir(RAW_CARTEIRA, index, day) / "part-00000.parquet"


def read_raw_pandas(root: Path | str) -> pd.DataFrame:
    """Every raw row with ``indice`` (str) and ``data_pregao`` (date) from the Hive path."""
    partitioning = ds.partitioning(pa.schema([("indice", pa.string()), ("data_pregao", pa.date32())]), flavor="hive")
    dataset = ds.dataset(str(Path(root) / RAW_CARTEIRA), format="parquet", partitioning=partitioning)
    return dataset.to_table().to_pandas()


def read_refined(root: Path | str, table: TableDef) -> pd.DataFrame:
    """A refined table read back as a reader would (pyarrow.dataset, Hive partitions), in a stable order."""
    types = {"date": pa.date32(), "string": pa.string()}
    keys = pa.schema([(name, types[glue_type]) for name, glue_type in table.partition_keys])
    dataset = ds.dataset(
        str(Path(root) / table.prefix), format="parquet", partitioning=ds.partitioning(keys, flavor="hive")
    )
    frame = dataset.to_table().to_pandas()
    order = [name for name, _ in table.partition_keys] + ["indice"] + [
        c for c in ("setor", "tipo") if c in frame.columns and table.name != "tb_carteira_refined"
    ]
    return frame.sort_values(order, na_position="first", kind="stable").reset_index(drop=True)


def files_under(root: Path | str, prefix: str = "refined") -> dict[str, bytes]:
    """Every file (hidden ones included) under ``prefix``: relative path → bytes."""
    base = Path(root)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted((base / prefix).rglob("*")) if p.is_file()}
