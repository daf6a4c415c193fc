"""Raw portfolio assets: one per index, partitioned by B3 session, written as Parquet to the lake.

A run may cover a range of sessions (backfills batch many sessions per run, since a Dagster run
costs far more than parsing one file). Each session it loads gets its own materialization, with
that session's metadata and check results; a session with no publication gets none, so gaps in
the archive stay visible as missing partitions instead of being invented.
"""

from collections.abc import Iterator
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
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
    Failure,
    MetadataValue,
    PartitionsDefinition,
    RetryRequested,
    multi_asset,
)

from ..b3.snapshot import WEIGHT_TOLERANCE_PCT, B3DataError, PortfolioSnapshot
from ..b3.source import NotYetPublished, SessionNotAvailable
from ..lake import RAW_CARTEIRA, Lake, partition_dir
from ..raw_table import snapshot_to_table
from ..resources import B3PortfolioResource, LakeResource

CHECKS = {
    "weights_sum_to_100": f"The stored weights add up to 100% within {WEIGHT_TOLERANCE_PCT} points.",
    "unique_tickers": "Each ticker appears once in the stored session.",
    "positive_quantities": "Every stored theoretical quantity is above zero.",
}


def raw_portfolio_key(index: str) -> AssetKey:
    return AssetKey(["raw", f"carteira_{index.lower()}"])


def check_stored_portfolio(table: pa.Table) -> list[tuple[str, bool, dict]]:
    """(check name, passed, metadata) for a stored raw partition, read back from the lake."""
    total = pc.sum(table["part"]).as_py() or 0.0
    counts = pc.value_counts(table["cod"])
    duplicates = sorted(v["values"] for v in counts.to_pylist() if v["counts"] > 1)
    non_positive = table.filter(pc.less_equal(table["theorical_qty"], 0))["cod"].to_pylist()
    return [
        ("weights_sum_to_100", abs(total - 100) <= WEIGHT_TOLERANCE_PCT, {"total_weight_pct": round(total, 6)}),
        ("unique_tickers", not duplicates, {"duplicates": ", ".join(duplicates) or "none"}),
        ("positive_quantities", not non_positive, {"non_positive": ", ".join(non_positive) or "none"}),
    ]


def store_session(lake: Lake, key: AssetKey, snapshot: PortfolioSnapshot, partition: str) -> Iterator:
    """Write one session atomically, then report it and check what was actually stored."""
    file_key = lake.write_table(partition_dir(RAW_CARTEIRA, snapshot.indice, snapshot.data_pregao),
                                snapshot_to_table(snapshot))
    stored = lake.read_table(file_key)
    prov = snapshot.provenance
    yield AssetMaterialization(
        asset_key=key,
        partition=partition,
        metadata={
            "dagster/row_count": stored.num_rows,
            "total_weight_pct": snapshot.total_weight_pct,
            "qtd_teorica_total": snapshot.qtd_teorica_total,
            "source": prov.source,
            "source_location": prov.location,
            "sha256": prov.sha256,
            "fetched_at": prov.fetched_at.isoformat(),
            "path": MetadataValue.path(lake.url(file_key)),
        },
    )
    for name, passed, meta in check_stored_portfolio(stored):
        yield AssetCheckEvaluation(
            asset_key=key, check_name=name, passed=passed, metadata=meta,
            partition=partition, severity=AssetCheckSeverity.ERROR,
        )


def build_raw_portfolio_asset(
    index: str, partitions_def: PartitionsDefinition, sessions_per_run: int
) -> AssetsDefinition:
    index = index.upper()
    key = raw_portfolio_key(index)

    @multi_asset(
        name=f"raw_carteira_{index.lower()}",
        specs=[
            AssetSpec(
                key,
                group_name="raw",
                kinds={"parquet"},
                skippable=True,
                description=f"B3's theoretical portfolio of {index} for one session ('carteira do dia'), "
                f"as published, under {RAW_CARTEIRA}/indice={index}/data_pregao=YYYY-MM-DD/.",
                metadata={"indice": index},
            )
        ],
        check_specs=[AssetCheckSpec(name, asset=key, description=text) for name, text in CHECKS.items()],
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=sessions_per_run),
        can_subset=True,  # lets a run report only the sessions it really loaded
    )
    def raw_portfolio(context: AssetExecutionContext, lake: LakeResource, b3: B3PortfolioResource) -> Iterator:
        partitions = context.partition_keys
        single = len(partitions) == 1
        source, store = b3.source(), lake.lake()
        missing, failed, loaded = [], [], 0
        for partition in partitions:
            session = date.fromisoformat(partition)
            try:
                snapshot = source.fetch(index, session)
            except NotYetPublished as exc:
                if single:
                    context.log.warning(f"{exc}; retrying in {b3.live_retry_wait_s}s")
                    raise RetryRequested(max_retries=b3.live_retries, seconds_to_wait=b3.live_retry_wait_s) from exc
                failed.append(f"{partition}: {exc}")
                continue
            except SessionNotAvailable as exc:
                missing.append(partition)
                if single:
                    raise Failure(description=str(exc), allow_retries=False) from exc
                continue
            except B3DataError as exc:
                failed.append(f"{partition}: {exc}")
                context.log.error(failed[-1])
                continue
            yield from store_session(store, key, snapshot, partition)
            loaded += 1
        context.log.info(f"{index}: {loaded} session(s) loaded, {len(missing)} without data, {len(failed)} failed")
        if missing:
            context.log.warning(f"{index}: no publication for {len(missing)} session(s): {', '.join(missing)}")
        if failed:
            raise Failure(description=f"{index}: {len(failed)} session(s) failed:\n" + "\n".join(failed))
        if not loaded:
            raise Failure(description=f"{index}: no session in {partitions[0]}..{partitions[-1]} has a publication")

    return raw_portfolio
