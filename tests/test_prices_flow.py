"""A year of archived ^BVSP prices through the whole local path: Dagster raw runs → S3-shaped events →
the Lambda handler (routing raw/cotacoes/ to the prices job) → the prices Glue job on local Spark →
catalog → the same sensors that observe the portfolio job. Nothing here is mocked.
"""

import dataclasses
import json
from datetime import date

import pytest
from dagster import AssetCheckKey, build_sensor_context

from bovespa_assets.assets.prices import raw_prices_key
from bovespa_assets.definitions import build_definitions
from bovespa_assets.observe import JOB_CHECK, refined_key
from bovespa_assets.partitions import sessions_between
from bovespa_assets.refine.tables import BVSP_MENSAL, BVSP_REFINED
from bovespa_assets.runner import Runner, dagster_instance
from bovespa_assets.settings import Settings

YEAR = sessions_between(date(2024, 1, 1), date(2024, 12, 31))


def tick(defs, name, instance, cursor=None):
    sensor = defs.resolve_sensor_def(name)
    return sensor(build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources))


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOVESPA_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        for name in ("BOVESPA_ARCHIVE", "BOVESPA_PRICE_ARCHIVE", "BOVESPA_LAKE", "BOVESPA_TARGET"):
            patch.delenv(name, raising=False)
        settings = dataclasses.replace(Settings.from_env(), offline=True, refine_sessions_per_run=200)
        runner = Runner(settings, echo=lambda _: None)
        report = runner.backfill_prices(["^BVSP"], date(2024, 1, 1), date(2024, 12, 31))
        runs = runner.refine(sorted({o.session for o in report.of("loaded")}), ["raw/cotacoes"])
        yield {"settings": settings, "report": report, "runs": runs, "instance": dagster_instance(settings),
               "defs": build_definitions(settings), "home": home}


def test_a_year_of_archived_prices_is_loaded_one_dagster_run_per_batch(year):
    report = year["report"]
    assert len(YEAR) == 251 and len(report.of("loaded")) == 251 and not report.of("missing") + report.of("failed")
    assert len({o.run_id for o in report.outcomes}) == 1  # 251 sessions ≤ BOVESPA_SESSIONS_PER_RUN (500)
    instance = year["instance"]
    assert instance.get_materialized_partitions(raw_prices_key("^BVSP")) == {s.isoformat() for s in YEAR}
    lake = year["home"] / "lake" / "raw" / "cotacoes" / "ticker=BVSP"
    assert len(list(lake.iterdir())) == 251


def test_the_refine_starts_one_job_run_per_batch_not_per_session(year):
    runs = year["runs"]
    assert [r["JobName"] for r in runs] == ["bovespa-refine-cotacoes"] * 2  # 251 sessions in batches of 200
    assert sorted(len(r["Arguments"]["--sessions"].split(",")) for r in runs) == [51, 200]
    assert all(r["JobRunState"] == "SUCCEEDED" for r in runs), runs
    jobs = year["defs"].resources["refine"].jobs()
    assert jobs.get_job_runs(JobName="bovespa-refine-carteira")["JobRuns"] == []  # no price object went there


def test_the_cli_recorded_the_runs_as_the_sensors_would_and_they_do_not_repeat_them(year):
    instance, defs = year["instance"], year["defs"]
    assert instance.get_materialized_partitions(refined_key(BVSP_REFINED.name)) == {s.isoformat() for s in YEAR}
    months = instance.get_materialized_partitions(refined_key(BVSP_MENSAL.name))
    assert months == {f"2024-{m:02d}-01" for m in range(1, 13)}
    checks = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(refined_key(BVSP_REFINED.name), JOB_CHECK), limit=10)
    assert len(checks) == 2 and all(r.event.dagster_event.event_specific_data.passed for r in checks)
    assert not tick(defs, "glue_refine_runs", instance).asset_events  # already recorded by the CLI
    assert not tick(defs, "glue_catalog_partitions", instance).asset_events


def test_the_catalog_observations_count_the_registered_partitions(year):
    instance = year["instance"]
    observed = instance.fetch_observations(refined_key(BVSP_MENSAL.name), limit=10).records
    per_month = {}
    for record in observed:
        per_month.update(json.loads(record.asset_observation.metadata["partitions_per_session"].value))
    assert per_month == {f"2024-{m:02d}-01": 1 for m in range(1, 13)}
    refined = instance.fetch_observations(refined_key(BVSP_REFINED.name), limit=10).records
    per_session: dict[str, list[int]] = {}
    for record in refined:
        for session, count in json.loads(record.asset_observation.metadata["partitions_per_session"].value).items():
            per_session.setdefault(session, []).append(count)
    assert set(per_session) == {s.isoformat() for s in YEAR}
    assert all(c in ([1], [1, 1]) for c in per_session.values())
    # the first batch also rewrote the 7 bars after its last session (their 7-bar figures use it)
    assert sorted(s for s, c in per_session.items() if len(c) == 2) == [s.isoformat() for s in YEAR[200:207]]
