"""The query layer on the local target: the views' Athena SQL run by DuckDB over a real refined lake.

ONE lake for the module, refined by ONE in-process run of the Glue script on local Spark: every
session of the bundled IBOV archive (48 real sessions, 2021-09 … 2025-03, with gaps, one of them
with sectors) and six real IBXX sessions, so each view works per index. Expected values are
computed here with pandas from the RAW Parquet (never from the refined tables or the SQL).
"""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlglot
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    evaluate_automation_conditions,
)
from dagster import materialize as dagster_materialize
from PIL import Image
from refine_lake import write_raw
from views_reference import assert_same, expected_changes, expected_changes_in_weight, expected_composition, read_raw

from bovespa_assets.assets.views import (
    CHANGES_CHART,
    CHARTS_KEY,
    SECTOR_CHART,
    build_view_assets,
    charts_carteira,
    view_key,
)
from bovespa_assets.definitions import build_definitions
from bovespa_assets.glue import refine_job
from bovespa_assets.observe import refined_key
from bovespa_assets.query.checks import CHECKS
from bovespa_assets.query.duckdb_engine import DuckDBQueryEngine
from bovespa_assets.query.views import VIEWS_DIR, QueryError, ViewDefinitionError, load_view, load_views
from bovespa_assets.resources import LakeResource
from bovespa_assets.resources.query import LocalQueryEngineResource
from bovespa_assets.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
IBXX_SESSIONS = [date(2024, 1, 31), date(2024, 2, 9), date(2024, 4, 26), date(2024, 4, 29), date(2024, 7, 29),
                 date(2024, 7, 31)]
REQUIRED_VIEWS = {"vw_mudancas_carteira", "vw_composicao_setorial", "vw_variacao_participacao"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("views") / "lake"
    sessions = sorted({*write_raw(root, "IBOV"), *write_raw(root, "IBXX", IBXX_SESSIONS)})
    catalog = root.parent / "catalog.sqlite"
    code = refine_job.main(["--sessions", ",".join(d.isoformat() for d in sessions), "--lake_uri", str(root),
                            "--catalog", "local", "--catalog_path", str(catalog), "--JOB_RUN_ID", "jr_views"])
    assert code == 0
    return root


@pytest.fixture(scope="module")
def engine(lake):
    engine = DuckDBQueryEngine(str(lake), cache_dir=lake.parent / "duckdb")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def raw(lake) -> pd.DataFrame:
    return read_raw(lake)


# ---------------------------------------------------------------------------------------- the SQL


def test_every_view_is_athena_sql_reading_fully_qualified_tables():
    views = load_views()
    assert {v.name for v in views} >= REQUIRED_VIEWS
    for view in views:
        [create] = sqlglot.parse(view.statement, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
        assert isinstance(create, sqlglot.exp.Create) and create.kind == "VIEW"
        assert create.this.sql("trino") == f"workspace_db.{view.name}"
        # Trino's generator reads its own output back as the same tree
        assert sqlglot.parse_one(create.sql("trino"), read="trino") == create
        assert view.sources and view.description
        assert all(f"workspace_db.{s}" in view.statement for s in view.sources)
        sqlglot.parse_one(view.statement_for("duckdb"), read="duckdb")  # the translation is DuckDB SQL


@pytest.mark.parametrize(("text", "reason"), [
    ("CREATE OR REPLACE VIEW workspace_db.vw_bad AS SELECT * FROM tb_carteira_refined",
     "must be fully qualified as workspace_db.tb_carteira_refined"),
    ("CREATE OR REPLACE VIEW workspace_db.vw_other AS SELECT 1 AS x", "must create workspace_db.vw_bad"),
    ("SELECT * FROM workspace_db.tb_carteira_refined", "expected exactly one CREATE OR REPLACE VIEW"),
    ("CREATE OR REPLACE VIEW workspace_db.vw_bad AS SELECT (1 FROM", "not valid Athena/Trino SQL"),
])
def test_a_bad_view_file_is_refused_naming_the_file_and_the_reason(tmp_path, text, reason):
    path = tmp_path / "vw_bad.sql"
    path.write_text(f"-- a view\n{text}\n")
    with pytest.raises(ViewDefinitionError) as error:
        load_view(path)
    assert str(path) in str(error.value) and reason in str(error.value)


# -------------------------------------------------------------------------------- DuckDB vs pandas


def test_the_tables_answer_with_and_without_the_database_prefix(engine, raw):
    qualified = engine.query("SELECT count(*) AS n FROM workspace_db.tb_carteira_refined").iloc[0, 0]
    plain = engine.query("SELECT count(*) AS n FROM tb_carteira_refined").iloc[0, 0]
    assert qualified == plain == len(raw)
    assert engine.tables() >= {"tb_carteira_refined", "tb_setor_diario", "tb_tipo_diario"}
    assert engine.skipped == {  # this lake holds the portfolio tables only, no prices
        "vw_bvsp_resumo_mensal": "skipped vw_bvsp_resumo_mensal: no tb_bvsp_mensal in workspace_db yet"}


def test_vw_mudancas_carteira_equals_pandas(engine, raw):
    actual = engine.query("SELECT * FROM vw_mudancas_carteira")
    expected = expected_changes(raw)
    assert_same(actual, expected, ["indice", "data_pregao", "codigo"])
    assert set(actual["evento"]) == {"inclusao", "exclusao"} and set(actual["indice"]) == {"IBOV", "IBXX"}
    # across a gap in the archive, "previous" is the previous session held, not the previous B3 session
    gap = actual[(actual["indice"] == "IBOV") & (actual["data_pregao"] == date(2025, 1, 6))]
    assert set(gap["data_pregao_anterior"]) == {date(2024, 4, 26)}


def test_vw_composicao_setorial_equals_pandas(engine, raw):
    actual = engine.query("SELECT * FROM workspace_db.vw_composicao_setorial")
    assert_same(actual, expected_composition(raw), ["indice", "data_pregao", "setor"])
    with_sectors = actual[actual["setor"].notna()]
    assert set(with_sectors["data_pregao"]) == {date(2022, 12, 8)}  # the one session whose source has sectors
    assert len(with_sectors) > 20


def test_vw_variacao_participacao_equals_pandas(engine, raw):
    actual = engine.query("SELECT * FROM vw_variacao_participacao")
    assert_same(actual, expected_changes_in_weight(raw), ["indice", "data_pregao", "posicao"])
    assert actual.groupby(["indice", "data_pregao"]).size().max() == 10


def test_checks_pass_on_real_data_and_catch_a_wrong_view(engine, tmp_path):
    for check in CHECKS:
        assert engine.query(check.violations_sql).empty, check.name

    # the same views, but "previous session" two sessions back, and a sector left out of a session
    broken = tmp_path / "views"
    shutil.copytree(VIEWS_DIR, broken)
    changes = broken / "vw_mudancas_carteira.sql"
    changes.write_text(changes.read_text().replace("lag(data_pregao)", "lag(data_pregao, 2)"))
    sectors = broken / "vw_composicao_setorial.sql"
    sectors.write_text(sectors.read_text() + "WHERE NOT (data_pregao = DATE '2022-12-08' AND qtd_acoes = 3)\n")
    try:
        for view in load_views(broken):
            if view.name not in engine.skipped:
                engine.create_view(view)
        failures = {check.name: engine.query(check.violations_sql) for check in CHECKS}
    finally:
        for view in engine.views:
            engine.create_view(view)
    assert len(failures["pesos_setoriais_somam_100"]) == 1
    assert failures["pesos_setoriais_somam_100"].iloc[0]["data_pregao"] == date(2022, 12, 8)
    assert len(failures["inclusoes_coerentes"]) > 0 and len(failures["exclusoes_coerentes"]) > 0


def test_a_view_over_a_table_not_in_the_lake_is_skipped_with_the_reason(lake, tmp_path):
    """A lake holding only tb_setor_diario, and views a later issue may add over tables not there yet."""
    partial = tmp_path / "lake"
    shutil.copytree(lake / "refined" / "tb_setor_diario", partial / "refined" / "tb_setor_diario")
    folder = tmp_path / "views"
    shutil.copytree(VIEWS_DIR, folder)
    (folder / "vw_bvsp_resumo_mensal.sql").write_text(
        "CREATE OR REPLACE VIEW workspace_db.vw_bvsp_resumo_mensal AS\n"
        "SELECT mes, fechamento FROM workspace_db.tb_bvsp_mensal\n")
    (folder / "vw_depende_do_resumo.sql").write_text(
        "CREATE OR REPLACE VIEW workspace_db.vw_depende_do_resumo AS\n"
        "SELECT * FROM workspace_db.vw_bvsp_resumo_mensal JOIN workspace_db.vw_composicao_setorial ON true\n")
    views = load_views(folder)
    names = [v.name for v in views]
    assert names.index("vw_depende_do_resumo") > names.index("vw_bvsp_resumo_mensal")
    local = DuckDBQueryEngine(str(partial), views)
    try:
        assert local.skipped == {
            "vw_bvsp_resumo_mensal": "skipped vw_bvsp_resumo_mensal: no tb_bvsp_mensal in workspace_db yet",
            "vw_depende_do_resumo": "skipped vw_depende_do_resumo: no vw_bvsp_resumo_mensal in workspace_db yet",
            "vw_mudancas_carteira": "skipped vw_mudancas_carteira: no tb_carteira_refined in workspace_db yet",
            "vw_variacao_participacao": "skipped vw_variacao_participacao: no tb_carteira_refined in workspace_db yet",
        }
        assert [v.name for v in local.views] == ["vw_composicao_setorial"]
        assert len(local.query("SELECT * FROM vw_composicao_setorial"))
        with pytest.raises(QueryError, match="vw_bvsp_resumo_mensal"):
            local.query("SELECT * FROM vw_bvsp_resumo_mensal")
    finally:
        local.close()


def test_loaded_tables_are_cached_until_a_file_of_the_table_changes(lake, tmp_path):
    partial, cache = tmp_path / "lake", tmp_path / "cache"
    table = partial / "refined" / "tb_setor_diario"
    shutil.copytree(lake / "refined" / "tb_setor_diario", table)

    def load():
        engine = DuckDBQueryEngine(str(partial), cache_dir=cache)
        try:
            frame = engine.query("SELECT * FROM vw_composicao_setorial ORDER BY indice, data_pregao, posicao")
            return engine.loaded_from["tb_setor_diario"], frame
        finally:
            engine.close()

    first_source, first = load()
    [cached] = cache.glob("tb_setor_diario-*.parquet")
    second_source, second = load()
    assert first_source.startswith(str(table)) and second_source == str(cached)
    pd.testing.assert_frame_equal(first, second)

    # a refine run rewrites a session: the cache no longer matches, the lake is read again
    one = next(table.glob("data_pregao=2022-12-08/*.parquet"))
    rows = pq.read_table(one)
    pq.write_table(rows.slice(1), one)
    third_source, third = load()
    assert third_source.startswith(str(table))
    assert len(third) == len(first) - 1
    [recached] = cache.glob("tb_setor_diario-*.parquet")
    assert recached != cached


def readme_queries() -> list[str]:
    return [block.strip() for block in re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.S)]


def test_the_readme_example_queries_run_and_answer_what_they_say(engine, raw):
    queries = readme_queries()
    assert len(queries) >= 3
    results = [engine.query(sql) for sql in queries]
    assert all(len(result) for result in results)
    # the first example: the largest weights of the latest session, as in the raw file
    latest = raw[raw["data_pregao"] == raw.loc[raw["indice"] == "IBOV", "data_pregao"].max()]
    top = latest[latest["indice"] == "IBOV"].nlargest(len(results[0]), "part")
    assert list(results[0]["codigo"]) == list(top["cod"])


# ------------------------------------------------------------------------------- Dagster wiring


def test_view_assets_materialize_with_their_checks_and_charts(lake, engine, raw):
    query_engine = LocalQueryEngineResource(lake_uri=str(lake), cache_dir=str(lake.parent / "duckdb"))
    result = dagster_materialize(
        [build_view_assets(), charts_carteira],
        resources={"query_engine": query_engine, "lake": LakeResource(uri=str(lake))},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    materialized = {e.materialization.asset_key: e.materialization.metadata
                    for e in result.get_asset_materialization_events()}
    assert set(materialized) == {view_key(name) for name in REQUIRED_VIEWS} | {CHARTS_KEY}
    assert materialized[view_key("vw_mudancas_carteira")]["dagster/row_count"].value == len(expected_changes(raw))
    assert materialized[view_key("vw_mudancas_carteira")]["engine"].value == "duckdb"
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks == {"pesos_setoriais_somam_100": True, "inclusoes_coerentes": True, "exclusoes_coerentes": True}

    charts = materialized[CHARTS_KEY]
    for key, name in (("sector_weights_png", SECTOR_CHART), ("composition_changes_png", CHANGES_CHART)):
        path = Path(charts[key].value)
        assert path == lake / name
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 600 and image.height > 300
    assert charts["sector_chart_sessions"].value == {"IBOV": "2022-12-08", "IBXX": "2024-07-31"}

    # a check run on its own (from the UI) re-checks the view without materializing it
    only_check = dagster_materialize(
        [build_view_assets(), charts_carteira],
        selection=AssetSelection.checks(AssetCheckKey(view_key("vw_mudancas_carteira"), "inclusoes_coerentes")),
        resources={"query_engine": query_engine, "lake": LakeResource(uri=str(lake))},
        instance=DagsterInstance.ephemeral(),
    )
    assert only_check.success and not only_check.get_asset_materialization_events()
    [evaluation] = [e.event_specific_data for e in only_check.all_events
                    if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert evaluation.check_name == "inclusoes_coerentes" and evaluation.passed


def test_refined_partitions_recorded_trigger_the_views_and_charts(tmp_path):
    settings = Settings.from_env({"BOVESPA_HOME": str(tmp_path), "BOVESPA_INDICES": "IBOV"})
    defs = build_definitions(settings)
    selection = AssetSelection.groups("views")
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(defs, instance, asset_selection=selection)
        assert first.total_requested == 0  # nothing new upstream

        instance.report_runless_asset_event(AssetMaterialization(refined_key("tb_carteira_refined"),
                                                                 partition="2025-03-20"))
        second = evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=first.cursor)
        requested = {key for key in defs.resolve_asset_graph().get_all_asset_keys()
                     if second.get_requested_partitions(key)}
        assert requested == {view_key("vw_mudancas_carteira"), view_key("vw_variacao_participacao"), CHARTS_KEY}

        instance.report_runless_asset_event(AssetMaterialization(refined_key("tb_setor_diario"),
                                                                 partition="2025-03-20"))
        third = evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=second.cursor)
        assert view_key("vw_composicao_setorial") in {
            key for key in defs.resolve_asset_graph().get_all_asset_keys() if third.get_requested_partitions(key)}
        assert AssetKey(["views", "vw_mudancas_carteira"]) not in {
            key for key in defs.resolve_asset_graph().get_all_asset_keys() if third.get_requested_partitions(key)}
