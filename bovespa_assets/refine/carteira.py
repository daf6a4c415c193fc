"""The refine step in PySpark: raw B3 portfolios in, the three refined tables out (DataFrames only).

Pure PySpark plus the table contract (``tables.py``, plain Python): no pandas, no pyarrow, no AWS,
so the same functions run in the Glue job and in a local Spark session.

Input: every raw partition, ``raw/carteira/indice=<INDEX>/data_pregao=<YYYY-MM-DD>/*.parquet``
with B3's own column names (``cod``, ``asset``, ``type``, ``segment``, ``part``, ``theorical_qty``
...); ``indice`` and ``data_pregao`` come from the Hive path.

``tb_carteira_refined`` (one row per index, session and ticker)
-----------------------------------------------------------------
Renames: ``cod``→``codigo``, ``asset``→``acao``, ``type``→``tipo_publicado`` (B3's fixed-width type
field as published, e.g. ``'ON  EJ  NM'``), ``segment``→``setor`` (null when the source carries no
sector, i.e. B3's CSV downloads), ``part``→``participacao_pct``, ``theorical_qty``→``qtd_teorica``,
``source_sha256``→``fonte_sha256``. ``tipo`` is the share class: the first whitespace-separated token
of the published type (``'ON  EJ  NM'`` → ``'ON'``, ``'UNT N2'`` → ``'UNT'``).

Date calculations. They are made per index over the index's *available sessions*: the sessions
that have a raw partition for that index, in date order (B3 sessions missing from the archive are
not invented, so "previous" means the previous session we hold, which may be weeks earlier).

- ``data_pregao_anterior``: the index's previous available session; null for its first session.
- ``dias_desde_pregao_anterior``: calendar days from ``data_pregao_anterior`` to ``data_pregao``.
- ``participacao_anterior_pct`` / ``qtd_teorica_anterior``: the ticker's weight / theoretical
  quantity in that previous session; null when there is no previous session or the ticker was not
  in it.
- ``variacao_participacao_pp``: ``participacao_pct - participacao_anterior_pct`` in percentage
  points; ``variacao_qtd_teorica``: ``qtd_teorica - qtd_teorica_anterior``. Null when the previous
  value is null.
- ``media_movel_5_participacao_pct``: mean of the ticker's weight over the index's last 5 available
  sessions up to and including this one, counting only the sessions in which the ticker is present
  (the average of the ticker's rows whose session is among those 5; never null, since the current
  row is always one of them).
- ``flag_entrada``: a previous available session exists and the ticker was absent from it (false on
  the index's first session: nothing to compare with).
- ``flag_saida``: a *next* available session of the index exists and the ticker is absent from it;
  the flag marks the ticker's last session before leaving (false on the index's latest session,
  which is why the job rewrites the previous session whenever a new one arrives).
- ``sessoes_na_carteira``: how many of the index's available sessions so far (this one included)
  had the ticker in the portfolio.

Weight arithmetic (differences, moving average, sector/type totals) is done in DECIMAL on the
published values and rounded once to double, so ``1.234 - 1.232`` is ``0.002`` (not
``0.0019999999999997797``) and sums do not depend on Spark's summation order: re-runs give the
same doubles bit for bit.

``tb_setor_diario`` / ``tb_tipo_diario``: per index, session and sector (a null sector is kept as its
own group) / share class: ``participacao_total_pct`` (sum of weights), ``qtd_acoes`` (number of
tickers) and ``qtd_teorica_total`` (sum of theoretical quantities).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .tables import CARTEIRA, SETOR_DIARIO, TIPO_DIARIO, TableDef

# The raw files' schema (bovespa_assets.raw_table.RAW_SCHEMA) plus the two Hive path columns. Given
# explicitly so Spark neither opens a file to infer it nor guesses the partition columns' types.
RAW_SPARK_SCHEMA = T.StructType(
    [
        T.StructField("cod", T.StringType()),
        T.StructField("asset", T.StringType()),
        T.StructField("type", T.StringType()),
        T.StructField("segment", T.StringType()),
        T.StructField("part", T.DoubleType()),
        T.StructField("theorical_qty", T.LongType()),
        T.StructField("theorical_qty_total", T.LongType()),
        T.StructField("reductor", T.DoubleType()),
        T.StructField("source", T.StringType()),
        T.StructField("source_location", T.StringType()),
        T.StructField("source_sha256", T.StringType()),
        T.StructField("fetched_at", T.TimestampType()),
        T.StructField("indice", T.StringType()),
        T.StructField("data_pregao", T.DateType()),
    ]
)
RAW_REQUIRED = ("cod", "asset", "type", "part", "theorical_qty")  # never null in a sound raw file

# Published weights have 3 decimals (up to 100.000): 10 decimal places keep them exact and leave
# room for the moving average's division.
_WEIGHT = T.DecimalType(24, 10)
MOVING_AVERAGE_SESSIONS = 5


def read_raw(spark: SparkSession, raw_uri: str) -> DataFrame:
    """All raw partitions under ``raw_uri`` (…/raw/carteira); ``indice`` and ``data_pregao`` (date) from the path."""
    raw_uri = raw_uri.rstrip("/")
    return spark.read.schema(RAW_SPARK_SCHEMA).option("basePath", raw_uri).parquet(raw_uri)


def share_class(published_type: Column) -> Column:
    """First token of B3's type field: 'ON  EJ  NM' → 'ON'; null for an empty field."""
    token = F.split(F.trim(published_type), r"\s+").getItem(0)
    return F.when(token != "", token)


def _as_weight(column: Column) -> Column:
    return column.cast(_WEIGHT)


def _contract(df: DataFrame, table: TableDef) -> DataFrame:
    """The table's columns in contract order and with the contract's types, then its partition keys."""
    columns = table.columns + table.partition_keys
    return df.select(*(F.col(name).cast(glue_type).alias(name) for name, glue_type in columns))


def refine_carteira(raw: DataFrame) -> DataFrame:
    """Raw rows → ``tb_carteira_refined`` columns plus the partition columns ``data_pregao`` and ``codigo``."""
    rows = raw.select(
        F.col("indice"),
        F.col("data_pregao"),
        F.col("cod").alias("codigo"),
        F.col("asset").alias("acao"),
        share_class(F.col("type")).alias("tipo"),
        F.col("type").alias("tipo_publicado"),
        F.col("segment").alias("setor"),
        F.col("part").alias("participacao_pct"),
        F.col("theorical_qty").alias("qtd_teorica"),
        F.col("source_sha256").alias("fonte_sha256"),
    )

    # The index's available sessions, numbered in order (1, 2, ...), with the previous and next ones.
    by_index = Window.partitionBy("indice").orderBy("data_pregao")
    rows = rows.withColumn("_n", F.dense_rank().over(by_index))
    # Sessions are numbered without gaps, so the previous / next session is exactly _n - 1 / _n + 1:
    # bounded frames, which Spark slides in one pass. (An unbounded-following frame is re-aggregated
    # for every row: O(rows^2) over an index's whole history, 15 s of a 250-session run here.)
    by_session = Window.partitionBy("indice").orderBy("_n")
    rows = rows.select(
        "*",
        F.max("data_pregao").over(by_session.rangeBetween(-1, -1)).alias("data_pregao_anterior"),
        F.min("data_pregao").over(by_session.rangeBetween(1, 1)).alias("_proxima"),
    )

    # The ticker's own history in the index, by session number: a neighbour row counts only when it
    # is the index's adjacent session.
    by_ticker = Window.partitionBy("indice", "codigo").orderBy("_n")
    in_previous = F.coalesce(F.lag("_n").over(by_ticker) == F.col("_n") - 1, F.lit(False))
    in_next = F.coalesce(F.lead("_n").over(by_ticker) == F.col("_n") + 1, F.lit(False))
    last_sessions = by_ticker.rangeBetween(-(MOVING_AVERAGE_SESSIONS - 1), Window.currentRow)

    previous_weight = F.when(in_previous, F.lag("participacao_pct").over(by_ticker))
    previous_qty = F.when(in_previous, F.lag("qtd_teorica").over(by_ticker))
    refined = rows.select(
        "*",
        previous_weight.alias("participacao_anterior_pct"),
        previous_qty.alias("qtd_teorica_anterior"),
        F.datediff("data_pregao", "data_pregao_anterior").alias("dias_desde_pregao_anterior"),
        (_as_weight(F.col("participacao_pct")) - _as_weight(previous_weight)).cast("double").alias(
            "variacao_participacao_pp"
        ),
        (F.col("qtd_teorica") - previous_qty).alias("variacao_qtd_teorica"),
        F.avg(_as_weight(F.col("participacao_pct"))).over(last_sessions).cast("double").alias(
            "media_movel_5_participacao_pct"
        ),
        (F.col("data_pregao_anterior").isNotNull() & ~in_previous).alias("flag_entrada"),
        (F.col("_proxima").isNotNull() & ~in_next).alias("flag_saida"),
        F.row_number().over(by_ticker).alias("sessoes_na_carteira"),
    )
    return _contract(refined, CARTEIRA)


def _daily_totals(refined: DataFrame, key: str, table: TableDef) -> DataFrame:
    totals = refined.groupBy("indice", "data_pregao", key).agg(
        F.sum(_as_weight(F.col("participacao_pct"))).cast("double").alias("participacao_total_pct"),
        F.count(F.lit(1)).alias("qtd_acoes"),
        F.sum("qtd_teorica").alias("qtd_teorica_total"),
    )
    return _contract(totals, table)


def setor_diario(refined: DataFrame) -> DataFrame:
    """Per index, session and sector (null sector kept as a group): ``tb_setor_diario`` columns + ``data_pregao``."""
    return _daily_totals(refined, "setor", SETOR_DIARIO)


def tipo_diario(refined: DataFrame) -> DataFrame:
    """Per index, session and share class: ``tb_tipo_diario`` columns + ``data_pregao``."""
    return _daily_totals(refined, "tipo", TIPO_DIARIO)
