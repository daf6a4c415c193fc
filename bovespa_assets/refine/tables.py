"""The refined tables' contract: names, columns (Glue types), partition keys and lake layout.

Shared by the Glue job (which writes and registers them) and the Dagster graph (which observes
them), so the two can never disagree on a name.
"""

from __future__ import annotations

from dataclasses import dataclass

DATABASE = "workspace_db"
REFINED_PREFIX = "refined"
MANIFEST_PREFIX = "refined/_manifests"  # one JSON per job run: what it wrote (read by the sensors)


@dataclass(frozen=True)
class TableDef:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, Glue/Hive type), partition keys excluded
    partition_keys: tuple[tuple[str, str], ...]
    description: str

    @property
    def prefix(self) -> str:
        return f"{REFINED_PREFIX}/{self.name}"


CARTEIRA = TableDef(
    name="tb_carteira_refined",
    columns=(
        ("indice", "string"),
        ("acao", "string"),
        ("tipo", "string"),  # share class: ON, PN, PNA, PNB, UNT, ...
        ("tipo_publicado", "string"),  # B3's fixed-width type field as published, e.g. 'ON  EJ  NM'
        ("setor", "string"),
        ("participacao_pct", "double"),
        ("qtd_teorica", "bigint"),
        ("data_pregao_anterior", "date"),
        ("dias_desde_pregao_anterior", "int"),
        ("participacao_anterior_pct", "double"),
        ("variacao_participacao_pp", "double"),
        ("qtd_teorica_anterior", "bigint"),
        ("variacao_qtd_teorica", "bigint"),
        ("media_movel_5_participacao_pct", "double"),
        ("flag_entrada", "boolean"),
        ("flag_saida", "boolean"),
        ("sessoes_na_carteira", "int"),
        ("fonte_sha256", "string"),
    ),
    partition_keys=(("data_pregao", "date"), ("codigo", "string")),
    description="One row per index, session and ticker, with date calculations versus the index's previous session.",
)

SETOR_DIARIO = TableDef(
    name="tb_setor_diario",
    columns=(
        ("indice", "string"),
        ("setor", "string"),
        ("participacao_total_pct", "double"),
        ("qtd_acoes", "int"),
        ("qtd_teorica_total", "bigint"),
    ),
    partition_keys=(("data_pregao", "date"),),
    description="Per index, session and sector: total weight, number of assets, total theoretical quantity.",
)

TIPO_DIARIO = TableDef(
    name="tb_tipo_diario",
    columns=(
        ("indice", "string"),
        ("tipo", "string"),
        ("participacao_total_pct", "double"),
        ("qtd_acoes", "int"),
        ("qtd_teorica_total", "bigint"),
    ),
    partition_keys=(("data_pregao", "date"),),
    description="Per index, session and share class (ON, PN, UNT ...): total weight, assets, quantity.",
)

TABLES: tuple[TableDef, ...] = (CARTEIRA, SETOR_DIARIO, TIPO_DIARIO)
TABLES_BY_NAME: dict[str, TableDef] = {table.name: table for table in TABLES}
