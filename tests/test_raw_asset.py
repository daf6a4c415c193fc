"""The raw asset through real Dagster runs on the local target (a folder lake, a real instance)."""

import dataclasses
import os
import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckKey, DagsterEventType, build_schedule_context, materialize

from bovespa_assets.assets.raw import build_raw_portfolio_asset, raw_portfolio_key
from bovespa_assets.b3.archive import PortfolioArchive
from bovespa_assets.definitions import build_definitions
from bovespa_assets.partitions import partitions_for
from bovespa_assets.resources import B3PortfolioResource, LakeResource
from bovespa_assets.runner import Runner, dagster_instance
from bovespa_assets.settings import SAMPLE_ARCHIVE, Settings

IBOV = raw_portfolio_key("IBOV")


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("BOVESPA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.delenv("BOVESPA_ARCHIVE", raising=False)
    monkeypatch.delenv("BOVESPA_INDICES", raising=False)
    return dataclasses.replace(Settings.from_env(), offline=True)


def lake_files(settings: Settings) -> list[Path]:
    return sorted(p for p in Path(settings.lake_uri).rglob("*") if p.is_file())


def test_a_session_is_stored_as_published_with_metadata_and_checks(settings):
    runner = Runner(settings, echo=lambda _: None)
    [outcome] = runner.run_sessions([date(2025, 2, 3)], ["IBOV"])
    assert outcome.status == "loaded", outcome.detail

    stored = Path(settings.lake_uri) / "raw/carteira/indice=IBOV/data_pregao=2025-02-03/part-00000.parquet"
    assert lake_files(settings) == [stored]
    table = pq.read_table(stored)
    expected = PortfolioArchive(SAMPLE_ARCHIVE).find("IBOV", date(2025, 2, 3))
    assert table.num_rows == len(expected.rows) == 87
    assert table.column("cod").to_pylist() == [r.codigo for r in expected.rows]
    assert table.column("part").to_pylist() == [r.participacao_pct for r in expected.rows]
    assert set(table.column("source_sha256").to_pylist()) == {expected.provenance.sha256}

    instance = runner.instance
    event = instance.get_latest_materialization_event(IBOV)
    meta = event.asset_materialization.metadata
    assert event.asset_materialization.partition == "2025-02-03"
    assert meta["dagster/row_count"].value == 87
    assert meta["total_weight_pct"].value == pytest.approx(100.0)
    assert meta["source"].value == "archive-csv"
    assert meta["sha256"].value == expected.provenance.sha256
    assert meta["path"].value == str(stored)
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [AssetCheckKey(IBOV, name) for name in ("weights_sum_to_100", "unique_tickers", "positive_quantities")]
    )
    assert len(checks) == 3
    assert all(record.event.dagster_event.event_specific_data.passed for record in checks.values())


def test_rerunning_a_session_replaces_it(settings):
    runner = Runner(settings, echo=lambda _: None)
    runner.run_sessions([date(2025, 2, 4)], ["IBOV"])
    first = [(p, pq.read_table(p)) for p in lake_files(settings)]
    runner.run_sessions([date(2025, 2, 4)], ["IBOV"])
    runner.backfill(["IBOV"], date(2025, 2, 4), date(2025, 2, 4))
    second = [(p, pq.read_table(p)) for p in lake_files(settings)]
    assert [p for p, _ in first] == [p for p, _ in second] and len(second) == 1
    assert first[0][1].drop(["fetched_at"]).equals(second[0][1].drop(["fetched_at"]))


def test_a_range_run_materializes_only_sessions_with_data(settings):
    runner = Runner(settings, echo=lambda _: None)
    report = runner.backfill(["IBOV"], date(2024, 12, 30), date(2025, 2, 5))
    loaded = {o.session for o in report.of("loaded")}
    assert loaded == {date(2025, 1, 6), date(2025, 2, 3), date(2025, 2, 4), date(2025, 2, 5)}
    missing = {o.session for o in report.of("missing")}
    assert date(2025, 1, 2) in missing and date(2025, 1, 31) in missing
    assert not loaded & missing and not report.of("failed")
    assert runner.instance.get_materialized_partitions(IBOV) == {d.isoformat() for d in loaded}
    # the whole span ran as one Dagster run, not one run per session
    assert len(runner.instance.get_runs()) == 1


def test_a_past_session_without_a_file_fails_clearly_and_stores_nothing(settings):
    runner = Runner(settings, echo=lambda _: None)
    [outcome] = runner.run_sessions([date(2025, 1, 2)], ["IBOV"])
    assert outcome.status == "failed"
    assert "IBOV 2025-01-02: no archived B3 file" in outcome.detail
    assert "past sessions come from an archive" in outcome.detail
    assert lake_files(settings) == []


def test_a_corrupt_file_fails_its_session_and_damages_nothing(settings, tmp_path):
    archive = tmp_path / "archive"
    shutil.copytree(SAMPLE_ARCHIVE, archive)
    settings = dataclasses.replace(settings, archive_uri=str(archive))
    runner = Runner(settings, echo=lambda _: None)
    runner.run_sessions([date(2025, 2, 6)], ["IBOV"])
    good = Path(settings.lake_uri) / "raw/carteira/indice=IBOV/data_pregao=2025-02-06/part-00000.parquet"
    before = good.read_bytes()

    corrupt = archive / "IBOV" / "IBOVDia_06-02-25.csv"
    corrupt.write_bytes(corrupt.read_bytes().replace(b"4.394.835.131", b"4.394.835.132"))  # ABEV3's quantity
    report = runner.backfill(["IBOV"], date(2025, 2, 5), date(2025, 2, 7))
    [failed] = report.of("failed")
    assert failed.session == date(2025, 2, 6)
    assert str(corrupt) in failed.detail and "footer total" in failed.detail
    assert {o.session for o in report.of("loaded")} == {date(2025, 2, 5), date(2025, 2, 7)}
    assert good.read_bytes() == before  # the earlier good partition is untouched
    assert not [p for p in lake_files(settings) if p.name.startswith(".")]


def test_a_late_b3_makes_the_run_retry_instead_of_storing_another_day(settings, tmp_path):
    """B3 still serving an older session: the run is retried (here once, at once), never stored."""
    from b3_replay import ReplayServer  # a local server replaying the real 2022-12-08 recording

    partitions = partitions_for(settings)
    latest = partitions.get_last_partition_key()  # today's or the next session: B3's API is asked
    (tmp_path / "empty").mkdir()
    with ReplayServer() as server:
        b3 = B3PortfolioResource(archive_uri=str(tmp_path / "empty"), base_url=server.base_url,
                                 live_retries=1, live_retry_wait_s=0)
        result = materialize(
            [build_raw_portfolio_asset("IBOV", partitions, sessions_per_run=10)],
            partition_key=latest, instance=dagster_instance(settings), raise_on_error=False,
            resources={"b3": b3, "lake": LakeResource(uri=settings.lake_uri)},
        )
    types = [e.event_type for e in result.all_events]
    assert types.count(DagsterEventType.STEP_UP_FOR_RETRY) == 1
    assert not result.success
    assert lake_files(settings) == []


def test_the_daily_schedule_follows_b3_sessions(settings):
    defs = build_definitions(settings)
    schedule = defs.resolve_schedule_def("daily_carteira")
    sao_paulo = ZoneInfo("America/Sao_Paulo")
    for day, expected in [(date(2025, 3, 3), None), (date(2024, 11, 20), None),
                          (date(2025, 3, 5), "2025-03-05"), (date(2024, 7, 9), "2024-07-09")]:
        when = datetime(day.year, day.month, day.day, 8, 30, tzinfo=sao_paulo)
        context = build_schedule_context(scheduled_execution_time=when, repository_def=defs.get_repository_def())
        result = schedule.evaluate_tick(context)
        if expected is None:
            assert result.skip_message and "not a B3 trading session" in result.skip_message
        else:
            [request] = result.run_requests
            assert request.partition_key == expected
    assert schedule.execution_timezone == "America/Sao_Paulo"


def test_the_aws_target_needs_a_lake_bucket():
    from bovespa_assets.settings import ConfigError

    with pytest.raises(ConfigError, match="BOVESPA_LAKE"):
        Settings.from_env({"BOVESPA_TARGET": "aws"})
    with pytest.raises(ConfigError, match="BOVESPA_TARGET"):
        Settings.from_env({"BOVESPA_TARGET": "gcp"})
    assert os.environ.get("BOVESPA_TARGET", "local") == "local"
