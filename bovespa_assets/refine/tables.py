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

MOVING_WINDOWS = (3, 5, 7)  # sessions: moving averages, window extremes and differences

BVSP_REFINED = TableDef(
    name="tb_bvsp_refined",
    columns=(
        ("simbolo", "string"),  # Yahoo's symbol, e.g. ^BVSP
        ("preco_abertura", "double"),
        ("preco_maximo", "double"),
        ("preco_minimo", "double"),
        ("preco_fechamento", "double"),
        ("volume", "bigint"),
        ("data_pregao_anterior", "date"),
        ("preco_fechamento_anterior", "double"),
        ("retorno_diario", "double"),
        ("amplitude_diaria", "double"),
        ("amplitude_diaria_pct", "double"),
        *((f"media_movel_{n}", "double") for n in MOVING_WINDOWS),
        *((f"minimo_{n}_sessoes", "double") for n in MOVING_WINDOWS),
        *((f"maximo_{n}_sessoes", "double") for n in MOVING_WINDOWS),
        *((f"diferenca_{n}_sessoes", "double") for n in MOVING_WINDOWS),
        ("fonte_sha256", "string"),
    ),
    partition_keys=(("data_pregao", "date"), ("ticker", "string")),
    description="Daily OHLCV per ticker and session with moving averages, window extremes, differences over "
    "3/5/7 sessions, daily amplitude and return.",
)

BVSP_MENSAL = TableDef(
    name="tb_bvsp_mensal",
    columns=(
        ("ticker", "string"),
        ("preco_fechamento_medio", "double"),
        ("preco_minimo_mes", "double"),
        ("preco_maximo_mes", "double"),
        ("preco_fechamento_ultimo", "double"),
        ("volume_total", "bigint"),
        ("volatilidade_retorno_diario", "double"),
        ("sessoes", "int"),
        ("primeiro_pregao", "date"),
        ("ultimo_pregao", "date"),
        ("mes_completo", "boolean"),
    ),
    partition_keys=(("ano", "int"), ("mes", "int")),
    description="Per ticker and month: average close, month's low and high, total volume, volatility "
    "(standard deviation of daily returns).",
)

CARTEIRA_TABLES: tuple[TableDef, ...] = TABLES
PRICE_TABLES: tuple[TableDef, ...] = (BVSP_REFINED, BVSP_MENSAL)


@dataclass(frozen=True)
class RefineJob:
    """One Glue job: the raw prefix whose objects start it, its script module, the tables it writes.

    Its first table carries the job's ``glue_job_succeeded`` check in Dagster.
    """

    dataset: str
    raw_prefix: str
    module: str
    tables: tuple[TableDef, ...]

    @property
    def primary(self) -> TableDef:
        return self.tables[0]


CARTEIRA_JOB = RefineJob("carteira", "raw/carteira/", "bovespa_assets.glue.refine_job", CARTEIRA_TABLES)
PRICES_JOB = RefineJob("cotacoes", "raw/cotacoes/", "bovespa_assets.glue.prices_job", PRICE_TABLES)

TABLES_BY_NAME: dict[str, TableDef] = {table.name: table for table in (*TABLES, *PRICE_TABLES)}
REFINE_JOBS: tuple[RefineJob, ...] = (CARTEIRA_JOB, PRICES_JOB)


def month_key(values: list[str]) -> str:
    """The Dagster monthly partition key of a tb_bvsp_mensal partition: ['2025', '2'] → '2025-02-01'."""
    return f"{int(values[0]):04d}-{int(values[1]):02d}-01"


def asset_partition_of(table: TableDef, values: list[str]) -> str:
    """The Dagster partition key a catalog partition belongs to: its session, or its month."""
    return values[0] if table.partition_keys[0][0] == "data_pregao" else month_key(values)


def catalog_expression(table: TableDef, asset_partitions: list[str]) -> str:
    """A Glue ``get_partitions`` expression covering the given Dagster partition keys (sorted)."""
    first, last = asset_partitions[0], asset_partitions[-1]
    if table.partition_keys[0][0] == "data_pregao":
        return f"data_pregao >= '{first}' AND data_pregao <= '{last}'"
    return f"ano >= {int(first[:4])} AND ano <= {int(last[:4])}"
