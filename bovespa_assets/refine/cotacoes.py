"""The price refine step in PySpark: raw daily bars in, ``tb_bvsp_refined`` and ``tb_bvsp_mensal`` out.

Pure PySpark plus the table contract, like :mod:`bovespa_assets.refine.carteira`.

Input: every raw price partition, ``raw/cotacoes/ticker=<TICKER>/data_pregao=<YYYY-MM-DD>/*.parquet``
with Yahoo's column names (``Open``, ``High``, ``Low``, ``Close``, ``Volume``).

``tb_bvsp_refined`` (one row per ticker and session)
----------------------------------------------------
Renames: ``Open``→``preco_abertura``, ``High``→``preco_maximo``, ``Low``→``preco_minimo``,
``Close``→``preco_fechamento``, ``Volume``→``volume``, ``source_sha256``→``fonte_sha256``.

Windows are taken per ticker over its *available bars*, in date order: a B3 session with no Yahoo
bar is not invented, so "the last N sessions" are the current bar and the N-1 bars before it,
whatever calendar span they cover.

- ``data_pregao_anterior`` / ``preco_fechamento_anterior``: the previous bar's date and close.
- ``retorno_diario``: ``preco_fechamento / preco_fechamento_anterior - 1`` (null on the first bar).
- ``amplitude_diaria``: ``preco_maximo - preco_minimo``; ``amplitude_diaria_pct``: that over
  ``preco_minimo``, in percent.
- ``media_movel_N`` (N = 3, 5, 7): mean close of the last N bars.
- ``minimo_N_sessoes`` / ``maximo_N_sessoes``: lowest ``preco_minimo`` / highest ``preco_maximo``
  of the last N bars.
- ``diferenca_N_sessoes``: ``preco_fechamento`` minus the close N bars earlier.
- All N-bar figures are null until the ticker has N bars: a "7-session" figure over 2 bars would
  not be one.

``tb_bvsp_mensal`` (one row per ticker and calendar month)
-----------------------------------------------------------
Over the month's bars: ``preco_fechamento_medio`` (mean close), ``preco_minimo_mes`` /
``preco_maximo_mes`` (lowest low / highest high), ``preco_fechamento_ultimo`` (last close),
``volume_total``, ``volatilidade_retorno_diario`` (sample standard deviation of the month's daily
returns; a month's first return is versus the previous month's last close; null with fewer than two
returns), ``sessoes`` (bars), ``primeiro_pregao`` / ``ultimo_pregao``. ``mes_completo`` is true once
the ticker has a bar after the month: a month still in progress (the latest) is computed from its
bars so far, flagged false, and rewritten as each new session arrives.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .tables import BVSP_MENSAL, BVSP_REFINED, MOVING_WINDOWS, TableDef

RAW_PRICES_SPARK_SCHEMA = T.StructType(
    [
        T.StructField("simbolo", T.StringType()),
        T.StructField("Open", T.DoubleType()),
        T.StructField("High", T.DoubleType()),
        T.StructField("Low", T.DoubleType()),
        T.StructField("Close", T.DoubleType()),
        T.StructField("Volume", T.LongType()),
        T.StructField("source", T.StringType()),
        T.StructField("source_location", T.StringType()),
        T.StructField("source_sha256", T.StringType()),
        T.StructField("fetched_at", T.TimestampType()),
        T.StructField("ticker", T.StringType()),
        T.StructField("data_pregao", T.DateType()),
    ]
)


def read_raw_prices(spark: SparkSession, raw_uri: str) -> DataFrame:
    """All raw price partitions under ``raw_uri`` (…/raw/cotacoes); ``ticker`` and ``data_pregao`` from the path."""
    raw_uri = raw_uri.rstrip("/")
    return spark.read.schema(RAW_PRICES_SPARK_SCHEMA).option("basePath", raw_uri).parquet(raw_uri)


def _contract(df: DataFrame, table: TableDef) -> DataFrame:
    columns = table.columns + table.partition_keys
    return df.select(*(F.col(name).cast(glue_type).alias(name) for name, glue_type in columns))


def refine_prices(raw: DataFrame) -> DataFrame:
    """Raw bars → ``tb_bvsp_refined`` columns plus the partition columns ``data_pregao`` and ``ticker``."""
    rows = raw.select(
        "ticker", "data_pregao", "simbolo",
        F.col("Open").alias("preco_abertura"),
        F.col("High").alias("preco_maximo"),
        F.col("Low").alias("preco_minimo"),
        F.col("Close").alias("preco_fechamento"),
        F.col("Volume").alias("volume"),
        F.col("source_sha256").alias("fonte_sha256"),
    )
    by_ticker = Window.partitionBy("ticker").orderBy("data_pregao")
    rows = rows.withColumn("_n", F.row_number().over(by_ticker))
    close, previous_close = F.col("preco_fechamento"), F.lag("preco_fechamento").over(by_ticker)
    amplitude = F.col("preco_maximo") - F.col("preco_minimo")
    figures = [
        F.lag("data_pregao").over(by_ticker).alias("data_pregao_anterior"),
        previous_close.alias("preco_fechamento_anterior"),
        (close / previous_close - 1).alias("retorno_diario"),
        amplitude.alias("amplitude_diaria"),
        (amplitude / F.col("preco_minimo") * 100).alias("amplitude_diaria_pct"),
    ]
    for n in MOVING_WINDOWS:
        last_n = by_ticker.rowsBetween(-(n - 1), Window.currentRow)
        full = F.col("_n") >= n
        figures += [
            F.when(full, F.avg(close).over(last_n)).alias(f"media_movel_{n}"),
            F.when(full, F.min("preco_minimo").over(last_n)).alias(f"minimo_{n}_sessoes"),
            F.when(full, F.max("preco_maximo").over(last_n)).alias(f"maximo_{n}_sessoes"),
            (close - F.lag("preco_fechamento", n).over(by_ticker)).alias(f"diferenca_{n}_sessoes"),
        ]
    return _contract(rows.select("*", *figures), BVSP_REFINED)


def monthly_prices(refined: DataFrame) -> DataFrame:
    """``tb_bvsp_refined`` rows (the whole history) → ``tb_bvsp_mensal`` columns plus ``ano`` and ``mes``."""
    months = refined.select(
        "*", F.year("data_pregao").alias("ano"), F.month("data_pregao").alias("mes")
    ).groupBy("ticker", "ano", "mes").agg(
        F.avg("preco_fechamento").alias("preco_fechamento_medio"),
        F.min("preco_minimo").alias("preco_minimo_mes"),
        F.max("preco_maximo").alias("preco_maximo_mes"),
        F.max_by("preco_fechamento", "data_pregao").alias("preco_fechamento_ultimo"),
        F.sum("volume").alias("volume_total"),
        F.stddev_samp("retorno_diario").alias("volatilidade_retorno_diario"),
        F.count(F.lit(1)).alias("sessoes"),
        F.min("data_pregao").alias("primeiro_pregao"),
        F.max("data_pregao").alias("ultimo_pregao"),
    )
    latest = refined.groupBy("ticker").agg(F.max("data_pregao").alias("_ultimo_do_ticker"))
    months = months.join(latest, "ticker").withColumn(
        "mes_completo", F.col("_ultimo_do_ticker") > F.col("ultimo_pregao")
    )
    return _contract(months, BVSP_MENSAL)
