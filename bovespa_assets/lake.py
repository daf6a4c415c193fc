"""The lake: one key layout over a local folder or S3, through pyarrow.fs.

Every write is atomic: locally a hidden temp file renamed into place (a rename within a folder is
atomic), on S3 a single PUT/multipart upload (an object appears only when complete). Partition
files have a fixed name, so re-running a partition replaces its file and never adds a second one.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

RAW_CARTEIRA = "raw/carteira"
RAW_COTACOES = "raw/cotacoes"
PARTITION_FILE = "part-00000.parquet"


def partition_dir(dataset: str, indice: str, session: date) -> str:
    """Hive-style key of one index/session partition, e.g. raw/carteira/indice=IBOV/data_pregao=2025-02-03."""
    return f"{dataset}/indice={indice.upper()}/data_pregao={session.isoformat()}"


def price_partition_dir(ticker: str, session: date) -> str:
    """Key of one ticker/session price partition, e.g. raw/cotacoes/ticker=BVSP/data_pregao=2025-02-03."""
    return f"{RAW_COTACOES}/ticker={ticker}/data_pregao={session.isoformat()}"


class Lake:
    def __init__(self, uri: str, s3_endpoint_url: str | None = None):
        self.uri = uri.rstrip("/")
        if uri.startswith("s3://"):
            bucket_and_prefix = uri[len("s3://") :].strip("/")
            self.filesystem: fs.FileSystem = fs.S3FileSystem(endpoint_override=s3_endpoint_url) \
                if s3_endpoint_url else fs.S3FileSystem()
            self.root = bucket_and_prefix
        elif "://" in uri:
            self.filesystem, self.root = fs.FileSystem.from_uri(uri)
        else:
            self.filesystem, self.root = fs.LocalFileSystem(), str(uri)
        self._local = isinstance(self.filesystem, fs.LocalFileSystem)

    def path(self, key: str) -> str:
        return f"{self.root}/{key}".rstrip("/")

    def url(self, key: str) -> str:
        """What a person can paste: s3://bucket/key or a local path."""
        return f"s3://{self.path(key)}" if isinstance(self.filesystem, fs.S3FileSystem) else self.path(key)

    def write_table(
        self, key_dir: str, table: pa.Table, file_name: str = PARTITION_FILE, **parquet_options: Any
    ) -> str:
        """Atomically (re)place `key_dir/file_name` with `table`; returns the file's key.

        ``parquet_options`` go to ``pyarrow.parquet.write_table`` (default: zstd compression).
        """
        parquet_options = {"compression": "zstd", **parquet_options}
        directory = self.path(key_dir)
        final = f"{directory}/{file_name}"
        if self._local:
            self.filesystem.create_dir(directory, recursive=True)
            temp = f"{directory}/.{uuid.uuid4().hex}.tmp"
            try:
                pq.write_table(table, temp, filesystem=self.filesystem, **parquet_options)
                self.filesystem.move(temp, final)
            except BaseException:
                self._delete_quietly(temp)
                raise
        else:
            pq.write_table(table, final, filesystem=self.filesystem, **parquet_options)
        return f"{key_dir}/{file_name}"

    def write_bytes(self, key: str, data: bytes) -> str:
        """Atomically (re)place the object ``key`` with ``data`` (e.g. a chart); returns its URL."""
        final = self.path(key)
        if self._local:
            directory = final.rsplit("/", 1)[0]
            self.filesystem.create_dir(directory, recursive=True)
            temp = f"{directory}/.{uuid.uuid4().hex}.tmp"
            try:
                with self.filesystem.open_output_stream(temp) as stream:
                    stream.write(data)
                self.filesystem.move(temp, final)
            except BaseException:
                self._delete_quietly(temp)
                raise
        else:
            with self.filesystem.open_output_stream(final) as stream:
                stream.write(data)
        return self.url(key)

    def read_table(self, key: str) -> pa.Table:
        return pq.read_table(self.path(key), filesystem=self.filesystem)

    def exists(self, key: str) -> bool:
        return self.filesystem.get_file_info(self.path(key)).type != fs.FileType.NotFound

    def list_files(self, prefix: str) -> list[fs.FileInfo]:
        """Visible files under a prefix (hidden temp files and _markers left out), in key order."""
        selector = fs.FileSelector(self.path(prefix), recursive=True, allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        return sorted(
            (i for i in infos if i.type == fs.FileType.File and not i.base_name.startswith((".", "_"))),
            key=lambda i: i.path,
        )

    def _delete_quietly(self, path: str) -> None:
        with contextlib.suppress(OSError):
            self.filesystem.delete_file(path)
