"""A folder (local or ``s3://``) of yfinance CSV files: past daily bars without asking Yahoo.

Every ``*.csv`` under the folder is read once; the symbols come from the files' Ticker header row,
not from their names. Two files holding the same symbol and date with different bars are an error.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from functools import cached_property

import pandas as pd
from pyarrow import fs

from .prices import PriceDataError, Provenance, read_yfinance_csv


class PriceArchive:
    def __init__(self, uri: str):
        self.uri = uri
        self._fs, self._root = fs.FileSystem.from_uri(uri) if "://" in uri else (fs.LocalFileSystem(), uri)

    @cached_property
    def _bars(self) -> dict[str, list[tuple[pd.DataFrame, Provenance]]]:
        if self._fs.get_file_info(self._root).type != fs.FileType.Directory:
            raise PriceDataError(self.uri, "price archive folder does not exist (or is not a folder)")
        infos = self._fs.get_file_info(fs.FileSelector(self._root, recursive=True))
        found: dict[str, list[tuple[pd.DataFrame, Provenance]]] = {}
        for info in sorted(infos, key=lambda i: i.path):
            if info.type != fs.FileType.File or info.base_name.startswith((".", "_")):
                continue
            if not info.base_name.lower().endswith(".csv"):
                continue
            with self._fs.open_input_stream(info.path) as stream:
                payload = stream.read()
            provenance = Provenance("archive-csv", info.path, hashlib.sha256(payload).hexdigest(), datetime.now(UTC))
            for symbol, bars in read_yfinance_csv(info.path, payload).items():
                found.setdefault(symbol, []).append((bars, provenance))
        return found

    def symbols(self) -> list[str]:
        return sorted(self._bars)

    def bars(self, symbol: str, start: date, end: date) -> list[tuple[pd.DataFrame, Provenance]]:
        """Each file's bars for ``symbol`` in [start, end] (empty list: the archive has no such file)."""
        out = []
        for bars, provenance in self._bars.get(symbol.upper(), []):
            window = bars[(bars.index >= start) & (bars.index <= end)]
            if len(window):
                out.append((window, provenance))
        return out

    def sessions(self, symbol: str) -> list[date]:
        return sorted({d for bars, _ in self._bars.get(symbol.upper(), []) for d in bars.index})
