"""The raw portfolio table: B3's own field names, one file per index and session.

Raw keeps what B3 published under B3's names (``cod``, ``asset``, ``part`` ...); the contract's
names (``codigo``, ``acao``, ``participacao_pct`` ...) are given by the refine step. ``indice`` and
``data_pregao`` live in the Hive path, not in the file, as Glue and Athena expect of partition keys.
"""

from __future__ import annotations

import pyarrow as pa

from .b3.snapshot import PortfolioSnapshot

RAW_SCHEMA = pa.schema(
    [
        pa.field("cod", pa.string(), nullable=False),
        pa.field("asset", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("segment", pa.string()),
        pa.field("part", pa.float64(), nullable=False),
        pa.field("theorical_qty", pa.int64(), nullable=False),
        pa.field("theorical_qty_total", pa.int64(), nullable=False),
        pa.field("reductor", pa.float64()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_location", pa.string(), nullable=False),
        pa.field("source_sha256", pa.string(), nullable=False),
        pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def snapshot_to_table(snapshot: PortfolioSnapshot) -> pa.Table:
    rows = snapshot.rows
    n = len(rows)
    prov = snapshot.provenance
    columns = {
        "cod": [r.codigo for r in rows],
        "asset": [r.acao for r in rows],
        "type": [r.tipo for r in rows],
        "segment": [r.setor for r in rows],
        "part": [r.participacao_pct for r in rows],
        "theorical_qty": [r.qtd_teorica for r in rows],
        "theorical_qty_total": [snapshot.qtd_teorica_total] * n,
        "reductor": [snapshot.redutor] * n,
        "source": [prov.source] * n,
        "source_location": [prov.location] * n,
        "source_sha256": [prov.sha256] * n,
        "fetched_at": [prov.fetched_at] * n,
    }
    metadata = {b"indice": snapshot.indice.encode(), b"data_pregao": snapshot.data_pregao.isoformat().encode()}
    return pa.table(columns, schema=RAW_SCHEMA.with_metadata(metadata))
