"""The normalized portfolio snapshot every source (CSV, saved JSON, live API) is parsed into.

One snapshot is one index on one B3 session, exactly as B3 published it, plus where it came from.
Downstream code (raw asset, Glue job, tests) only ever sees this shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

# B3 publishes weights with three decimals and fixes the rounding so they add up to 100.000;
# anything further off than this is a broken or truncated file, not rounding.
WEIGHT_TOLERANCE_PCT = 0.01


class B3DataError(ValueError):
    """Input from B3 (a file, a response) that cannot be trusted; names the input and the reason."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


@dataclass(frozen=True)
class PortfolioRow:
    codigo: str
    acao: str
    tipo: str
    setor: str | None
    participacao_pct: float
    qtd_teorica: int


@dataclass(frozen=True)
class Provenance:
    source: str  # "archive-csv", "archive-json" or "b3-api"
    location: str  # file path or URL
    sha256: str
    fetched_at: datetime

    @staticmethod
    def of(source: str, location: str, payload: bytes, fetched_at: datetime | None = None) -> Provenance:
        return Provenance(
            source=source,
            location=location,
            sha256=hashlib.sha256(payload).hexdigest(),
            fetched_at=fetched_at or datetime.now(UTC),
        )


@dataclass(frozen=True)
class PortfolioSnapshot:
    indice: str
    data_pregao: date
    rows: tuple[PortfolioRow, ...]
    qtd_teorica_total: int
    redutor: float | None
    provenance: Provenance
    published_weight_pct: float = field(default=100.0)

    @property
    def total_weight_pct(self) -> float:
        return round(sum(r.participacao_pct for r in self.rows), 6)

    def verify(self) -> PortfolioSnapshot:
        """Check the rows against B3's own footer; raise B3DataError naming the input if they disagree."""
        where = self.provenance.location
        if not self.rows:
            raise B3DataError(where, f"no portfolio rows for {self.indice} {self.data_pregao}")
        qty = sum(r.qtd_teorica for r in self.rows)
        if qty != self.qtd_teorica_total:
            raise B3DataError(
                where,
                f"theoretical quantities add up to {qty:,} but the footer total is {self.qtd_teorica_total:,}",
            )
        if abs(self.total_weight_pct - self.published_weight_pct) > WEIGHT_TOLERANCE_PCT:
            raise B3DataError(
                where,
                f"weights add up to {self.total_weight_pct:.3f}% instead of {self.published_weight_pct:.3f}%",
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the `bovespa inspect` contract)."""
        return {
            "indice": self.indice,
            "data_pregao": self.data_pregao.isoformat(),
            "rows": [asdict(r) for r in self.rows],
            "qtd_teorica_total": self.qtd_teorica_total,
            "redutor": self.redutor,
            "provenance": {
                "source": self.provenance.source,
                "location": self.provenance.location,
                "sha256": self.provenance.sha256,
                "fetched_at": self.provenance.fetched_at.isoformat(),
            },
        }
