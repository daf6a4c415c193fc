"""The query layer on the aws target: views and queries go to Athena through pyathena (moto, server mode).

moto runs no SQL; what matters here is what the adapter sends (statement, fully qualified names,
workgroup, result location, database), read back through Athena's own API, and that a result set
comes back as a DataFrame.
"""

import json

import boto3
import pytest
import requests

from bovespa_assets.cli import main
from bovespa_assets.query.views import load_views
from bovespa_assets.refine.catalog import ensure_database, ensure_table
from bovespa_assets.refine.tables import BVSP_MENSAL, CARTEIRA, DATABASE, PRICE_TABLES, SETOR_DIARIO, TABLES
from bovespa_assets.resources import resources_for
from bovespa_assets.settings import Settings

WORKGROUP = "bovespa-analytics"
RESULTS = "s3://example-athena-results/bovespa/"  # moto's in-memory S3: no real bucket


@pytest.fixture
def aws(monkeypatch, tmp_path, moto_endpoint):
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": moto_endpoint,
        "BOVESPA_TARGET": "aws", "BOVESPA_LAKE": "s3://example-lake/lake",
        "BOVESPA_ATHENA_WORKGROUP": WORKGROUP, "BOVESPA_ATHENA_OUTPUT": RESULTS,
        "BOVESPA_HOME": str(tmp_path / "home"), "DAGSTER_HOME": str(tmp_path / "home" / "dagster"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    boto3.client("s3").create_bucket(Bucket="example-athena-results")
    athena = boto3.client("athena")
    athena.create_work_group(Name=WORKGROUP)  # no default result location: only the adapter can give one
    return athena


def register(tables) -> None:
    glue = boto3.client("glue")
    ensure_database(glue, DATABASE)
    for table in tables:
        ensure_table(glue, DATABASE, table, f"s3://example-lake/lake/{table.prefix}")


def sent(athena) -> list[dict]:
    """Every query execution Athena received in the workgroup, oldest first."""
    ids = athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    executions = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    return sorted(executions, key=lambda e: e["Status"]["SubmissionDateTime"])


def engine_for_target():
    return resources_for(Settings.from_env())["query_engine"].open_engine()


def test_views_are_created_in_workspace_db_with_the_workgroup_and_result_location(aws):
    register([*TABLES, *PRICE_TABLES])
    engine = engine_for_target()
    assert engine.name == "athena" and not engine.skipped
    for view in engine.views:
        engine.create_view(view)
    executions = sent(aws)
    views = load_views()
    assert [e["Query"] for e in executions] == [v.statement for v in views]  # the SQL files, as written
    for execution, view in zip(executions, views, strict=True):
        assert execution["Query"].startswith(f"CREATE OR REPLACE VIEW workspace_db.{view.name} AS")
        assert all(f"workspace_db.{source}" in execution["Query"] for source in view.sources)
        assert execution["WorkGroup"] == WORKGROUP
        assert execution["ResultConfiguration"]["OutputLocation"].startswith(RESULTS)  # Athena adds <id>.csv
        assert execution["QueryExecutionContext"]["Database"] == DATABASE
        assert execution["StatementType"] == "DDL"


def test_queries_are_sent_fully_qualified_and_results_come_back(aws, moto_endpoint):
    register(TABLES)
    header = [{"VarCharValue": "evento"}, {"VarCharValue": "n"}]
    rows = [[{"VarCharValue": "inclusao"}, {"VarCharValue": "25"}],
            [{"VarCharValue": "exclusao"}, {"VarCharValue": "29"}]]
    columns = [{"Name": name, "Label": name, "Type": kind, "Precision": precision, "Scale": 0, "Nullable": "UNKNOWN"}
               for name, kind, precision in (("evento", "varchar", 2147483647), ("n", "bigint", 19))]
    seeded = requests.post(f"{moto_endpoint}/moto-api/static/athena/query-results", timeout=10, json={
        "region": "us-east-1",
        "results": [{"rows": [{"Data": r} for r in [header, *rows]], "column_info": columns}],
    })
    assert seeded.status_code == 201

    engine = engine_for_target()
    frame = engine.query("SELECT evento, count(*) AS n FROM vw_mudancas_carteira GROUP BY 1")
    assert frame.to_dict("records") == [{"evento": "inclusao", "n": 25}, {"evento": "exclusao", "n": 29}]
    [execution] = sent(aws)
    assert execution["Query"] == (
        "SELECT evento, COUNT(*) AS n FROM workspace_db.vw_mudancas_carteira AS vw_mudancas_carteira GROUP BY 1"
    )
    assert execution["WorkGroup"] == WORKGROUP
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(RESULTS)
    assert execution["QueryExecutionContext"]["Database"] == DATABASE


def test_bovespa_query_on_the_aws_target_goes_to_athena(aws, capsys):
    register(TABLES)
    assert main(["query", "SELECT codigo FROM tb_carteira_refined LIMIT 3", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # moto runs nothing: an empty result
    [execution] = sent(aws)
    assert "FROM workspace_db.tb_carteira_refined" in execution["Query"]
    assert execution["WorkGroup"] == WORKGROUP


def test_views_over_tables_missing_from_the_catalog_are_skipped_and_not_sent(aws):
    register([SETOR_DIARIO])
    engine = engine_for_target()
    assert [v.name for v in engine.views] == ["vw_composicao_setorial"]
    reason = f"no {CARTEIRA.name} in workspace_db yet"
    assert engine.skipped == {"vw_mudancas_carteira": f"skipped vw_mudancas_carteira: {reason}",
                              "vw_variacao_participacao": f"skipped vw_variacao_participacao: {reason}",
                              "vw_bvsp_resumo_mensal": f"skipped vw_bvsp_resumo_mensal: no {BVSP_MENSAL.name} in "
                                                       "workspace_db yet"}
    assert sent(aws) == []
