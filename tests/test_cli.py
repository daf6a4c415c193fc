"""The `bovespa` command as a user runs it."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance
from views_reference import expected_changes, expected_changes_in_weight, expected_composition, read_raw

from bovespa_assets.cli import main
from bovespa_assets.settings import SAMPLE_ARCHIVE

IBOV_2023_10_02 = Path(SAMPLE_ARCHIVE) / "IBOV" / "IBOVDia_02-10-23.csv"


def bovespa(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bovespa_assets.cli", *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300,
    )


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("BOVESPA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    for name in ("BOVESPA_ARCHIVE", "BOVESPA_INDICES", "BOVESPA_LAKE", "BOVESPA_TARGET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def test_inspect_prints_the_normalized_snapshot_as_json():
    done = bovespa("inspect", str(IBOV_2023_10_02), "--format", "json")
    assert done.returncode == 0, done.stderr
    snapshot = json.loads(done.stdout)
    assert {"indice", "data_pregao", "rows", "qtd_teorica_total", "redutor"} <= snapshot.keys()
    assert snapshot["indice"] == "IBOV" and snapshot["data_pregao"] == "2023-10-02"
    assert snapshot["qtd_teorica_total"] == 98_476_454_882
    assert snapshot["redutor"] == pytest.approx(17_486_930.35034135)
    wege = next(r for r in snapshot["rows"] if r["codigo"] == "WEGE3")
    assert wege == {"codigo": "WEGE3", "acao": "WEG", "tipo": "ON  EJ  NM", "setor": None,
                    "participacao_pct": 2.636, "qtd_teorica": 1_481_593_024}
    assert len(snapshot["rows"]) == 86


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file"), (b"<html><body>Servico indisponivel</body></html>", "HTML"),
     (b"IBOV - Carteira do Dia 02/10/23\nC\xf3digo;A\xe7\xe3o;Tipo;Qtde. Te\xf3rica;Part. (%)\nRRRP3;3R;ON;1;0,3;\n",
      "footer")],
)
def test_inspect_an_unreadable_file_says_which_and_why(tmp_path, content, reason):
    path = tmp_path / "IBOVDia_02-10-23.csv"
    if content is not None:
        path.write_bytes(content)
    done = bovespa("inspect", str(path), "--format", "json")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0]
    assert done.stdout == ""


def test_run_refuses_a_day_b3_does_not_trade(home, capsys):
    assert main(["run", "--date", "2025-03-04"]) == 2
    assert "2025-03-04 is not a B3 trading session" in capsys.readouterr().err


def test_backfill_loads_what_exists_reports_the_rest_and_records_runs(home, capsys):
    assert main(["backfill", "--start", "2025-03-10", "--end", "2025-03-14", "--index", "IBOV"]) == 0
    out = capsys.readouterr().out
    assert "[5/5] 2025-03-14 IBOV ok   87 rows from archive-csv" in out
    assert "loaded 5 session(s), 435 rows; 0 without data; 0 failed" in out

    assert main(["backfill", "--start", "2025-03-31", "--end", "2025-04-04"]) == 0
    out = capsys.readouterr().out
    assert "loaded 0 session(s)" in out and "no publication for 5 session(s): 2025-03-31" in out

    runs = DagsterInstance.get().get_runs()
    assert sorted(run.job_name for run in runs) == ["raw_carteira", "refresh_views"]  # raw, then the views
    [raw_run] = [run for run in runs if run.job_name == "raw_carteira"]
    assert raw_run.tags["bovespa/backfill"] == "2025-03-10..2025-03-14"


def test_backfill_takes_another_archive_and_index(home, capsys):
    fixtures = Path(__file__).parent / "fixtures" / "b3"
    code = main(["backfill", "--start", "2024-07-29", "--end", "2024-08-15", "--index", "IBXX",
                 "--archive", str(fixtures)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "loaded 4 session(s)" in out and "2024-08-12 IBXX ok   98 rows" in out
    assert (home / "lake/raw/carteira/indice=IBXX/data_pregao=2024-07-31/part-00000.parquet").exists()


def test_demo_runs_offline_on_the_bundled_archive_and_summarizes(home):
    done = bovespa("demo", env={"BOVESPA_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loaded 48 session(s), 4,176 rows" in done.stdout
    assert "largest weights on 2025-03-20:" in done.stdout
    assert "VALE3" in done.stdout
    sessions = list((home / "lake/raw/carteira/indice=IBOV").iterdir())
    assert len(sessions) == 48
    # the refine path ran: one Glue run for all 48 sessions, tables and catalog filled, runs recorded
    # one run of each Glue job: the portfolio job for the 48 sessions, the prices job for their prices
    assert done.stdout.count("SUCCEEDED") == 2 and "of bovespa-refine-carteira started for 48 session(s)" in done.stdout
    assert "of bovespa-refine-cotacoes started for" in done.stdout
    assert "refined: workspace_db.tb_carteira_refined  (4,176 rows, 48 sessions;" in done.stdout
    assert "catalog partitions: tb_carteira_refined 4,176, tb_setor_diario 48, tb_tipo_diario 48" in done.stdout
    # prices: the sample's sessions and the 7 before each, from the bundled real ^BVSP CSV; monthly summary
    assert "2025-02-28 COTACOES_BVSP ok close 122,799.00 from archive-csv" in done.stdout
    assert "monthly summary, workspace_db.tb_bvsp_mensal" in done.stdout
    assert "2025-02  BVSP         20  126,011.25" in done.stdout  # Feb 2025: 20 sessions, mean close of the CSV
    assert (home / "lake/raw/cotacoes/ticker=BVSP/data_pregao=2025-03-20/part-00000.parquet").exists()
    instance = DagsterInstance.from_config(str(home / "dagster"))
    refined = instance.get_materialized_partitions(AssetKey(["refined", "tb_carteira_refined"]))
    assert len(refined) == 48

    # then the views: created, checked, charted, recorded in the instance, and a few rows of each printed
    raw = read_raw(home / "lake")
    changes = expected_changes(raw)
    [views_line] = [line for line in done.stdout.splitlines() if line.startswith("views: ")]
    view_rows = dict(re.findall(r"(vw_\w+) ([\d,]+) rows", views_line))
    months = pq.read_table(home / "lake" / "refined" / "tb_bvsp_mensal").num_rows
    assert view_rows == {"vw_composicao_setorial": f"{len(expected_composition(raw)):,}",
                         "vw_mudancas_carteira": f"{len(changes):,}",
                         "vw_variacao_participacao": f"{len(expected_changes_in_weight(raw)):,}",
                         "vw_bvsp_resumo_mensal": f"{months:,}"}
    assert "view checks: 3 passed, 0 failed" in done.stdout
    for name in ("vw_composicao_setorial", "vw_mudancas_carteira", "vw_variacao_participacao", "vw_bvsp_resumo_mensal"):
        assert f"\n{name} (duckdb): SELECT " in done.stdout
        assert instance.get_latest_materialization_event(AssetKey(["views", name])) is not None
    last = changes.sort_values(["data_pregao", "evento", "codigo"], ascending=[False, True, True]).iloc[0]
    assert re.search(rf"{last.data_pregao} +{last.data_pregao_anterior} +{last.codigo} .* {last.evento}", done.stdout)
    for chart in ("pesos_setoriais.png", "mudancas_carteira.png"):
        assert f"chart: {home / 'lake' / 'charts' / chart}" in done.stdout
        assert (home / "lake" / "charts" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # and the acceptance query works on what the demo left
    query = bovespa("query", "SELECT evento, count(*) FROM vw_mudancas_carteira GROUP BY 1", "--format", "json",
                    env={"BOVESPA_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    assert query.returncode == 0, query.stderr
    counts = {row["evento"]: row["count_star()"] for row in json.loads(query.stdout)}
    assert counts == changes["evento"].value_counts().to_dict()


def test_query_says_why_it_cannot_answer(home, capsys):
    assert main(["query", "SELECT * FROM vw_mudancas_carteira"]) == 1
    err = capsys.readouterr().err
    assert "skipped vw_mudancas_carteira: no tb_carteira_refined in workspace_db yet" in err
    assert "vw_mudancas_carteira" in err and "no refined tables on the local target yet" in err
    assert main(["query", "SELECT FROM WHERE ((", "--format", "csv"]) == 1
    assert "not Athena/Trino SQL" in capsys.readouterr().err
