"""SYNTHETIC raw portfolios for benchmarks: volume, not market data.

Seeded from the real snapshots of the bundled archive: each synthetic session takes the previous
one, lets every weight drift a little (random walk, renormalized to 100.000) and now and then
swaps one ticker for another taken from the real snapshots, so entries and exits exist. Every row
says what it is: source = "synthetic", source_location = "synthetic:<seed>:<real file it started from>".
Sessions follow the real B3 calendar. Never use this output as data about the market.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime

from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.b3.snapshot import PortfolioRow, PortfolioSnapshot, Provenance
from bovespa_assets.lake import RAW_CARTEIRA, Lake, partition_dir
from bovespa_assets.partitions import sessions_between
from bovespa_assets.raw_table import snapshot_to_table
from bovespa_assets.settings import SAMPLE_ARCHIVE


def synthetic_sessions(count: int, start: date = date(2022, 1, 3), seed: int = 7) -> list[PortfolioSnapshot]:
    rng = random.Random(seed)
    archive = PortfolioArchive(SAMPLE_ARCHIVE)
    real = [archive.find("IBOV", day) for day in archive.sessions("IBOV")]
    pool = {row.codigo: row for snapshot in real for row in snapshot.rows}
    base = real[-1]
    rows = list(base.rows)
    days = sessions_between(start, date(start.year + 6, 12, 31))[:count]
    out = []
    for day in days:
        if rng.random() < 0.15:  # swap one ticker, so the entry/exit logic has work to do
            leaving = rng.randrange(len(rows))
            candidates = [c for c in pool if c not in {r.codigo for r in rows}]
            if candidates:
                rows[leaving] = pool[rng.choice(candidates)]
        drifted = [max(0.001, r.participacao_pct * (1 + rng.gauss(0, 0.01))) for r in rows]
        scale = 100 / sum(drifted)
        weights = [round(w * scale, 3) for w in drifted]
        weights[0] = round(weights[0] + 100 - sum(weights), 3)  # B3 also fixes rounding to 100.000
        rows = [replace(r, participacao_pct=w) for r, w in zip(rows, weights, strict=True)]
        provenance = Provenance(
            source="synthetic",
            location=f"synthetic:{seed}:{base.provenance.location.rsplit('/', 1)[-1]}",
            sha256="0" * 64,
            fetched_at=datetime.now(UTC),
        )
        out.append(
            PortfolioSnapshot(
                indice="IBOV",
                data_pregao=day,
                rows=tuple(PortfolioRow(r.codigo, r.acao, r.tipo, r.setor, r.participacao_pct, r.qtd_teorica)
                           for r in rows),
                qtd_teorica_total=sum(r.qtd_teorica for r in rows),
                redutor=base.redutor,
                provenance=provenance,
            ).verify()
        )
    return out


def write_raw(lake: Lake, snapshots: list[PortfolioSnapshot]) -> None:
    for snapshot in snapshots:
        lake.write_table(partition_dir(RAW_CARTEIRA, snapshot.indice, snapshot.data_pregao),
                         snapshot_to_table(snapshot))
