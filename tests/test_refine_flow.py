"""The refine path on the local target, through the sensors: raw objects → S3-shaped events → the
Lambda handler → the Glue script on local Spark → catalog → Dagster events. Nothing here is mocked.
"""

import dataclasses
import json
from datetime import date
from pathlib import Path

import pytest
from dagster import AssetCheckKey, DagsterInstance, SensorResult, SkipReason, build_sensor_context

from bovespa_assets.definitions import build_definitions
from bovespa_assets.observe import JOB_CHECK, refined_key
from bovespa_assets.refine.tables import CARTEIRA, SETOR_DIARIO, TIPO_DIARIO
from bovespa_assets.runner import Runner, dagster_instance
from bovespa_assets.settings import Settings

SESSIONS = [date(2025, 2, 3), date(2025, 2, 4), date(2025, 2, 5), date(2025, 2, 6), date(2025, 2, 7)]


def tick(defs, name: str, instance: DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def(name)
    context = build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources)
    return sensor(context)


def record(instance: DagsterInstance, result) -> None:
    """What the sensor daemon does with a SensorResult's asset events."""
    for event in result.asset_events:
        instance.report_runless_asset_event(event)


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOVESPA_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        for name in ("BOVESPA_ARCHIVE", "BOVESPA_INDICES", "BOVESPA_LAKE", "BOVESPA_TARGET"):
            patch.delenv(name, raising=False)
        settings = dataclasses.replace(Settings.from_env(), offline=True, refine_sessions_per_run=3)
        runner = Runner(settings, echo=lambda _: None)
        assert not runner.backfill(["IBOV"], SESSIONS[0], SESSIONS[-1]).of("failed")
        defs = build_definitions(settings)
        instance = dagster_instance(settings)
        refine = defs.resources["refine"]
        jobs = refine.jobs()

        delivered = tick(defs, "raw_objects_to_refine_job", instance, None)
        runs = jobs.get_job_runs(JobName=refine.job_name)["JobRuns"]
        finals = [jobs.wait(refine.job_name, run["Id"], timeout_s=600) for run in runs]
        yield {"settings": settings, "defs": defs, "instance": instance, "jobs": jobs, "refine": refine,
               "delivered": delivered, "runs": finals, "home": home}


def test_a_backfill_of_n_sessions_starts_ceil_n_over_batch_job_runs(flow):
    assert len(flow["runs"]) == 2  # 5 sessions, batches of 3
    batches = sorted(run["Arguments"]["--sessions"] for run in flow["runs"])
    assert batches == ["2025-02-03,2025-02-04,2025-02-05", "2025-02-06,2025-02-07"]
    assert all(run["JobRunState"] == "SUCCEEDED" for run in flow["runs"]), flow["runs"]


def test_delivered_objects_are_not_delivered_twice(flow):
    defs, instance, jobs, refine = flow["defs"], flow["instance"], flow["jobs"], flow["refine"]
    assert isinstance(flow["delivered"], SensorResult)
    again = tick(defs, "raw_objects_to_refine_job", instance, flow["delivered"].cursor)
    assert isinstance(again, SkipReason)
    # a sensor that lost its cursor hands the same objects to the handler again: the ledger refuses them
    tick(defs, "raw_objects_to_refine_job", instance, None)
    assert len(jobs.get_job_runs(JobName=refine.job_name)["JobRuns"]) == 2


def test_finished_runs_become_materializations_and_checks_once(flow):
    defs, instance = flow["defs"], flow["instance"]
    first = tick(defs, "glue_refine_runs", instance, None)
    record(instance, first)
    run_ids = {run["Id"] for run in flow["runs"]}
    for table in (CARTEIRA, SETOR_DIARIO, TIPO_DIARIO):
        assert instance.get_materialized_partitions(refined_key(table.name)) == {s.isoformat() for s in SESSIONS}
    event = instance.get_latest_materialization_event(refined_key(CARTEIRA.name))
    meta = event.asset_materialization.metadata
    assert meta["glue_run_id"].value in run_ids
    assert meta["dagster/row_count"].value == 87 and meta["partitions"].value == 87
    assert meta["duration_s"].value >= 0
    check = instance.event_log_storage.get_asset_check_execution_history(
        AssetCheckKey(refined_key(CARTEIRA.name), JOB_CHECK), limit=10)
    assert len(check) == 2 and all(r.event.dagster_event.event_specific_data.passed for r in check)

    # after a restart with its cursor, or with the cursor lost, nothing is reported again
    assert isinstance(tick(defs, "glue_refine_runs", instance, first.cursor), SkipReason)
    lost_cursor = tick(defs, "glue_refine_runs", instance, None)
    assert not lost_cursor.asset_events


def test_catalog_partitions_are_observed_once(flow):
    defs, instance = flow["defs"], flow["instance"]
    first = tick(defs, "glue_catalog_partitions", instance, None)
    record(instance, first)
    observations = [e for e in first.asset_events if e.asset_key == refined_key(CARTEIRA.name)]
    assert len(observations) == 2  # one per table and run
    by_run = {o.metadata["glue_run_id"].value: o for o in observations}
    assert set(by_run) == {run["Id"] for run in flow["runs"]}
    sessions_seen = set()
    for observation in observations:
        per_session = json.loads(observation.metadata["partitions_per_session"].value)
        assert set(per_session.values()) == {87}  # every ticker of every session is registered
        assert observation.metadata["catalog_partitions"].value == 87 * len(per_session)
        assert observation.metadata["catalog_table"].value == "workspace_db.tb_carteira_refined"
        assert "refined/tb_carteira_refined/data_pregao=" in observation.metadata["location_sample"].value
        sessions_seen |= set(per_session)
    assert sessions_seen == {s.isoformat() for s in SESSIONS}
    for table in (SETOR_DIARIO, TIPO_DIARIO):
        assert len([e for e in first.asset_events if e.asset_key == refined_key(table.name)]) == 2
    assert isinstance(tick(defs, "glue_catalog_partitions", instance, first.cursor), SkipReason)
    assert not tick(defs, "glue_catalog_partitions", instance, None).asset_events


def test_a_failing_job_shows_its_error_and_keeps_earlier_refined_data(flow):
    defs, instance, jobs, refine = flow["defs"], flow["instance"], flow["jobs"], flow["refine"]
    lake = Path(flow["settings"].lake_uri)
    refined = sorted(p for p in (lake / "refined").rglob("*.parquet"))
    before = {p: p.read_bytes() for p in refined}

    corrupt = lake / "raw/carteira/indice=IBOV/data_pregao=2025-02-06/part-00000.parquet"
    corrupt.write_bytes(b"this is not parquet")  # a new object version: delivered again
    delivered = tick(defs, "raw_objects_to_refine_job", instance, None)
    assert isinstance(delivered, SensorResult)
    runs = jobs.get_job_runs(JobName=refine.job_name)["JobRuns"]
    assert len(runs) == 3
    failed = jobs.wait(refine.job_name, runs[0]["Id"], timeout_s=600)
    assert failed["JobRunState"] == "FAILED"

    result = tick(defs, "glue_refine_runs", instance, None)
    [evaluation] = result.asset_events
    assert evaluation.check_name == JOB_CHECK and not evaluation.passed
    error = evaluation.metadata["error"].value
    assert "data_pregao=2025-02-06" in error or "part-00000.parquet" in error, error
    assert failed["Id"] in evaluation.description
    assert {p: p.read_bytes() for p in refined} == before  # earlier refined partitions intact
