"""Worker process of :func:`bovespa_assets.refine.writer.write_partitioned` for large local writes.

    python -m bovespa_assets.refine.write_worker LAKE_URI TABLE_NAME  < arrow-ipc-stream

Reads sorted rows of whole partitions (an Arrow IPC stream) on stdin, writes one file per partition
into the lake, prints the written keys as a JSON list on stdout.
"""

import json
import sys

import pyarrow as pa

from bovespa_assets.lake import Lake
from bovespa_assets.refine.tables import TABLES_BY_NAME
from bovespa_assets.refine.writer import write_rows


def main(argv: list[str]) -> int:
    lake_uri, table_name = argv
    rows = pa.ipc.open_stream(sys.stdin.buffer.read()).read_all()
    keys = write_rows(Lake(lake_uri), TABLES_BY_NAME[table_name], rows)
    json.dump(keys, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
