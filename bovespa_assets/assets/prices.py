"""Raw daily prices (OHLCV from Yahoo): one asset per symbol, on the same B3-session partitions.

A run covers a range of sessions with ONE request for the whole range (archive or Yahoo), then
writes one file per session that has a bar. A session with no Yahoo row gets no materialization
and is reported as missing: bars are never invented. A Yahoo row on a day B3 did not trade is not a
partition, so it is never stored.
"""

from collections.abc import Iterator
from datetime import date

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Config,
    Failure,
    MetadataValue,
    PartitionsDefinition,
    multi_asset,
)

from ..lake import RAW_COTACOES, price_partition_dir
from ..price_table import bar_to_table, ohlc_problems
from ..resources import LakeResource, YahooPricesResource
from ..yahoo.prices import PriceDataError, safe_ticker

OHLC_CHECK = "ohlc_consistent"


class RawPricesConfig(Config):
    """``only_sessions``: load just these sessions of the run's range (the demo's scattered sessions in one run)."""

    only_sessions: list[str] = []  # noqa: RUF012 (a pydantic field: copied per instance)


def raw_prices_op_name(symbol: str) -> str:
    return f"raw_cotacoes_{safe_ticker(symbol).lower().replace('.', '_')}"


def raw_prices_key(symbol: str) -> AssetKey:
    return AssetKey(["raw", f"cotacoes_{safe_ticker(symbol).lower().replace('.', '_')}"])


def build_raw_prices_asset(
    symbol: str, partitions_def: PartitionsDefinition, sessions_per_run: int
) -> AssetsDefinition:
    symbol = symbol.strip().upper()
    ticker = safe_ticker(symbol)
    key = raw_prices_key(symbol)

    @multi_asset(
        name=raw_prices_op_name(symbol),
        specs=[
            AssetSpec(
                key,
                group_name="raw",
                kinds={"parquet"},
                skippable=True,
                description=f"Daily OHLCV of {symbol} from Yahoo (yfinance), one bar per B3 session, "
                f"under {RAW_COTACOES}/ticker={ticker}/data_pregao=YYYY-MM-DD/.",
                metadata={"simbolo": symbol, "ticker": ticker},
            )
        ],
        check_specs=[AssetCheckSpec(OHLC_CHECK, asset=key,
                                    description="Prices above zero; Low and High bound Open and Close.")],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=sessions_per_run),
        can_subset=True,
    )
    def raw_prices(
        context: AssetExecutionContext, config: RawPricesConfig, lake: LakeResource, prices: YahooPricesResource
    ) -> Iterator:
        partitions = context.partition_keys
        if config.only_sessions:
            partitions = [p for p in partitions if p in set(config.only_sessions)]
            if not partitions:
                raise Failure(description=f"{symbol}: none of only_sessions is in the run's range", allow_retries=False)
        sessions = [date.fromisoformat(p) for p in partitions]
        try:
            found = prices.source().bars(symbol, sessions)
        except PriceDataError as exc:
            raise Failure(description=str(exc), allow_retries=False) from exc
        store = lake.lake()
        for session in sessions:
            if session not in found:
                continue
            bar, provenance = found[session]
            file_key = store.write_table(price_partition_dir(ticker, session),
                                         bar_to_table(symbol, session, bar, provenance))
            stored = store.read_table(file_key)
            yield AssetMaterialization(
                asset_key=key,
                partition=session.isoformat(),
                metadata={
                    "close": float(bar["Close"]),
                    "volume": int(bar["Volume"]),
                    "source": provenance.source,
                    "source_location": provenance.location,
                    "sha256": provenance.sha256,
                    "path": MetadataValue.path(store.url(file_key)),
                },
            )
            problems = ohlc_problems(stored)
            yield AssetCheckEvaluation(
                asset_key=key, check_name=OHLC_CHECK, passed=not problems, partition=session.isoformat(),
                severity=AssetCheckSeverity.ERROR, metadata={"problems": "; ".join(problems) or "none"},
            )
        missing = [s.isoformat() for s in sessions if s not in found]
        context.log.info(f"{symbol}: {len(found)} session(s) loaded, {len(missing)} without a Yahoo bar")
        if missing:
            context.log.warning(f"{symbol}: no Yahoo bar for {len(missing)} session(s): {', '.join(missing)}")
        if not found:
            raise Failure(description=f"{symbol}: no Yahoo bar for any session in {partitions[0]}..{partitions[-1]}",
                          allow_retries=False)

    return raw_prices
