"""The instance's batching event log stores exactly what Dagster's stock SQLite event log stores."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    AssetRecordsFilter,
    DagsterInstance,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from bovespa_assets.event_log import BatchingSqliteEventLogStorage, report_asset_events
from bovespa_assets.runner import DAGSTER_YAML_MARKER, dagster_instance
from bovespa_assets.settings import Settings

TABLE = AssetKey(["refined", "tb_carteira_refined"])
SECTORS = AssetKey(["refined", "tb_setor_diario"])
SESSIONS = ["2025-02-03", "2025-02-04", "2025-02-05"]


def events() -> list:
    out: list = []
    for key in (TABLE, SECTORS):
        for number, session in enumerate(SESSIONS):
            out.append(AssetMaterialization(asset_key=key, partition=session, tags={"bovespa/glue_run_id": "abc"},
                                            metadata={"dagster/row_count": 80 + number, "glue_run_id": "jr_1"}))
    out.append(AssetCheckEvaluation(asset_key=TABLE, check_name="glue_job_succeeded", passed=True,
                                    metadata={"glue_run_id": "jr_1"}))
    out.append(AssetObservation(asset_key=TABLE, metadata={"catalog_partitions": 261},
                                tags={"bovespa/catalog_run_id": "abc"}))
    return out


def recorded(instance: DagsterInstance) -> dict:
    """What the UI and the project's sensors read back, without ids and timestamps."""
    def materializations(key):
        records = instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=100).records
        return sorted((r.partition_key, r.asset_materialization.tags, dict(r.asset_materialization.metadata))
                      for r in records)

    check = instance.event_log_storage.get_asset_check_execution_history(AssetCheckKey(TABLE, "glue_job_succeeded"),
                                                                         limit=10)
    observations = instance.fetch_observations(AssetRecordsFilter(asset_key=TABLE), limit=10).records
    return {
        "materializations": {str(k): materializations(k) for k in (TABLE, SECTORS)},
        "partitions": {str(k): sorted(instance.get_materialized_partitions(k)) for k in (TABLE, SECTORS)},
        "latest": instance.get_latest_materialization_event(TABLE).asset_materialization.partition,
        "keys": sorted(str(k) for k in instance.all_asset_keys()),
        "check": [(r.status, r.event.dagster_event.event_specific_data.passed) for r in check],
        "observations": [(dict(r.asset_observation.metadata), r.asset_observation.tags) for r in observations],
    }


def test_a_batch_is_stored_exactly_as_one_by_one_events(tmp_path):
    stock_dir, batched_dir = tmp_path / "stock", tmp_path / "batched"
    stock_dir.mkdir()
    stock = DagsterInstance.local_temp(str(stock_dir))
    assert type(stock.event_log_storage) is SqliteEventLogStorage
    for event in events():
        stock.report_runless_asset_event(event)

    batched_dir.mkdir()
    (batched_dir / "dagster.yaml").write_text(
        "event_log_storage:\n  module: bovespa_assets.event_log\n  class: BatchingSqliteEventLogStorage\n"
        f"  config:\n    base_dir: {batched_dir / 'history' / 'runs'}\n"
    )
    batched = DagsterInstance.from_config(str(batched_dir))
    assert isinstance(batched.event_log_storage, BatchingSqliteEventLogStorage)
    report_asset_events(batched, events())

    expected = recorded(stock)
    assert recorded(batched) == expected
    assert expected["partitions"][str(TABLE)] == SESSIONS and expected["check"][0][1] is True


def test_the_cli_instance_uses_the_batching_storage_and_leaves_a_users_config_alone(tmp_path, monkeypatch):
    settings = dataclasses.replace(Settings.from_env(), home=tmp_path / "home")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    instance = dagster_instance(settings)
    home = Path(os.environ["DAGSTER_HOME"])
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert (home / "dagster.yaml").read_text().startswith(DAGSTER_YAML_MARKER)

    (home / "dagster.yaml").write_text(f"{DAGSTER_YAML_MARKER}\ntelemetry:\n  enabled: false\n")  # an older bovespa's
    assert isinstance(dagster_instance(settings).event_log_storage, BatchingSqliteEventLogStorage)

    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # the user's own
    assert type(dagster_instance(settings).event_log_storage) is SqliteEventLogStorage
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


@pytest.mark.parametrize("bad", [object(), "materialization"])
def test_only_asset_events_are_accepted(bad, tmp_path):
    with pytest.raises(TypeError, match="not an asset event"):
        report_asset_events(DagsterInstance.local_temp(str(tmp_path)), [bad])
