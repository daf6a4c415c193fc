"""An archive of B3 files (CSV downloads and saved JSON responses) for sessions the API no longer serves.

Any folder works, local or ``s3://``: files are found by B3's download name
(``<INDEX>Dia_DD-MM-YY.csv``) without being opened; files named otherwise are opened once to learn
their index and session. A file is always re-checked against the session it was picked for, so a
misnamed file is an error, never a portfolio stored under the wrong key.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from functools import cached_property

from pyarrow import fs

from .parse import date_from_file_name, index_from_json_name, read_portfolio_file
from .snapshot import B3DataError, PortfolioSnapshot


class PortfolioArchive:
    def __init__(self, uri: str):
        self.uri = uri
        self._fs, self._root = fs.FileSystem.from_uri(uri) if "://" in uri else (fs.LocalFileSystem(), uri)

    def read(self, path: str) -> PortfolioSnapshot:
        with self._fs.open_input_stream(path) as stream:
            return read_portfolio_file(path, stream.read())

    @cached_property
    def _files(self) -> dict[tuple[str, date], list[str]]:
        if self._fs.get_file_info(self._root).type != fs.FileType.Directory:
            raise B3DataError(self.uri, "archive folder does not exist (or is not a folder)")
        infos = self._fs.get_file_info(fs.FileSelector(self._root, recursive=True))
        found: dict[tuple[str, date], list[str]] = defaultdict(list)
        for info in sorted(infos, key=lambda i: i.path):
            name = info.base_name
            if info.type != fs.FileType.File or name.startswith((".", "_")):
                continue
            is_csv = name.lower().endswith(".csv")
            is_json = name.lower().endswith(".json") and index_from_json_name(name) is not None
            key = date_from_file_name(name) if is_csv else None
            if key is None and (is_csv or is_json):
                snapshot = self.read(info.path)
                key = (snapshot.indice, snapshot.data_pregao)
            if key is not None:
                found[key].append(info.path)
        return dict(found)

    def sessions(self, index: str) -> list[date]:
        """Sessions this archive holds a file for, for one index, in order."""
        return sorted(day for (idx, day) in self._files if idx == index.upper())

    def indices(self) -> list[str]:
        return sorted({idx for idx, _ in self._files})

    def find(self, index: str, session: date) -> PortfolioSnapshot | None:
        """The verified snapshot for (index, session), or None when the archive has no file for it."""
        paths = self._files.get((index.upper(), session))
        if not paths:
            return None
        path = min(paths, key=lambda p: (not p.lower().endswith(".csv"), p))  # prefer B3's CSV download
        snapshot = self.read(path)
        if (snapshot.indice, snapshot.data_pregao) != (index.upper(), session):
            raise B3DataError(
                path,
                f"named for {index.upper()} {session} but it holds {snapshot.indice} {snapshot.data_pregao}",
            )
        return snapshot
