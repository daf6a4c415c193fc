"""The prices Glue job on local Spark over the real ^BVSP history (2024-01 … 2025-06), run in-process.

Every refined and monthly figure is compared with an independent pandas computation of the same
definitions, written here from the real CSV (not by calling the Spark code). One B3 session
(2024-03-15) is left out of raw first, so windows run over the bars available; loading it later
refreshes the bars whose windows include it. The view vw_bvsp_resumo_mensal (Trino SQL) is parsed
with sqlglot and run on DuckDB over the refined files.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from price_lake import real_bvsp, write_raw_prices

from bovespa_assets.glue import prices_job, refine_job
from bovespa_assets.local.glue_catalog import LocalGlueCatalog
from bovespa_assets.query.views import load_view
from bovespa_assets.refine.catalog import get_all_partitions
from bovespa_assets.refine.tables import BVSP_MENSAL, BVSP_REFINED

START, END = date(2024, 1, 1), date(2025, 6, 27)
LEFT_OUT = date(2024, 3, 15)
VIEW = Path(__file__).resolve().parents[1] / "bovespa_assets" / "sql" / "views" / "vw_bvsp_resumo_mensal.sql"


# --------------------------------------------------------------------------------- the reference


def expected_refined(bars: pd.DataFrame) -> pd.DataFrame:
    """tb_bvsp_refined by the definitions, in pandas over the bars held (index: session dates)."""
    b = bars.sort_index()
    out = pd.DataFrame({
        "data_pregao": list(b.index), "ticker": "BVSP", "simbolo": "^BVSP",
        "preco_abertura": b["Open"].to_numpy(), "preco_maximo": b["High"].to_numpy(),
        "preco_minimo": b["Low"].to_numpy(), "preco_fechamento": b["Close"].to_numpy(),
        "volume": b["Volume"].to_numpy(),
    })
    out["data_pregao_anterior"] = out["data_pregao"].shift(1)
    out["preco_fechamento_anterior"] = out["preco_fechamento"].shift(1)
    out["retorno_diario"] = out["preco_fechamento"] / out["preco_fechamento_anterior"] - 1
    out["amplitude_diaria"] = out["preco_maximo"] - out["preco_minimo"]
    out["amplitude_diaria_pct"] = out["amplitude_diaria"] / out["preco_minimo"] * 100
    for n in (3, 5, 7):
        out[f"media_movel_{n}"] = out["preco_fechamento"].rolling(n, min_periods=n).mean()
        out[f"minimo_{n}_sessoes"] = out["preco_minimo"].rolling(n, min_periods=n).min()
        out[f"maximo_{n}_sessoes"] = out["preco_maximo"].rolling(n, min_periods=n).max()
        out[f"diferenca_{n}_sessoes"] = out["preco_fechamento"] - out["preco_fechamento"].shift(n)
    return out


def expected_monthly(refined: pd.DataFrame) -> pd.DataFrame:
    frame = refined.assign(ano=[d.year for d in refined["data_pregao"]], mes=[d.month for d in refined["data_pregao"]])
    rows = []
    last_bar = frame["data_pregao"].max()
    for (ano, mes), month in frame.groupby(["ano", "mes"]):
        month = month.sort_values("data_pregao")
        rows.append({
            "ano": ano, "mes": mes, "ticker": "BVSP",
            "preco_fechamento_medio": month["preco_fechamento"].mean(),
            "preco_minimo_mes": month["preco_minimo"].min(), "preco_maximo_mes": month["preco_maximo"].max(),
            "preco_fechamento_ultimo": month["preco_fechamento"].iloc[-1],
            "volume_total": int(month["volume"].sum()),
            "volatilidade_retorno_diario": month["retorno_diario"].std(ddof=1),
            "sessoes": len(month), "primeiro_pregao": month["data_pregao"].iloc[0],
            "ultimo_pregao": month["data_pregao"].iloc[-1], "mes_completo": month["data_pregao"].iloc[-1] < last_bar,
        })
    return pd.DataFrame(rows)


def held_bars(skip: tuple[date, ...] = ()) -> pd.DataFrame:
    real = real_bvsp()
    return real[(real.index >= START) & (real.index <= END) & ~real.index.isin(skip)]


def _py(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], skip=()) -> None:
    """Same rows by key; doubles equal to 1e-12 relative (Spark and pandas sum in different orders)."""
    columns = [c for c in expected.columns if c not in skip]
    got = {tuple(_py(r[k]) for k in keys): r for r in actual.to_dict("records")}
    want = {tuple(_py(r[k]) for k in keys): r for r in expected.to_dict("records")}
    assert got.keys() == want.keys()
    bad = []
    for key, row in want.items():
        for column in columns:
            a, e = _py(got[key][column]), _py(row[column])
            if isinstance(e, float) and a is not None:
                same = math.isclose(a, e, rel_tol=1e-12, abs_tol=1e-9)
            else:
                same = a == e
            if not same:
                bad.append((key, column, a, e))
    assert not bad, f"{len(bad)} mismatches, e.g. {bad[:5]}"


def read_table(lake: Path, table) -> pd.DataFrame:
    types = {"date": pa.date32(), "string": pa.string(), "int": pa.int32()}
    keys = pa.schema([(name, types[t]) for name, t in table.partition_keys])
    frame = ds.dataset(str(lake / table.prefix), format="parquet",
                       partitioning=ds.partitioning(keys, flavor="hive")).to_table().to_pandas()
    return frame


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def refined(tmp_path_factory):
    """ONE lake and one job run over the real slice, with 2024-03-15 left out of raw."""
    root = tmp_path_factory.mktemp("prices")
    lake, catalog = root / "lake", root / "catalog.sqlite"
    sessions = write_raw_prices(lake, START, END, skip=(LEFT_OUT,))
    refine_job.build_spark()
    code = prices_job.main(["--JOB_NAME", "bovespa-refine-cotacoes", "--sessions", ",".join(map(str, sessions)),
                            "--lake_uri", str(lake), "--catalog", "local", "--catalog_path", str(catalog),
                            "--JOB_RUN_ID", "jr_prices"])
    assert code == 0
    return {"lake": lake, "catalog": catalog, "sessions": sessions,
            "tables": {t.name: read_table(lake, t) for t in (BVSP_REFINED, BVSP_MENSAL)}}


# ------------------------------------------------------------------------------------------- tests


def test_refined_figures_equal_pandas_on_the_real_history(refined):
    actual = refined["tables"][BVSP_REFINED.name]
    expected = expected_refined(held_bars(skip=(LEFT_OUT,)))
    assert len(actual) == len(refined["sessions"]) == 371
    assert_same(actual, expected, ["data_pregao", "ticker"])
    assert actual["fonte_sha256"].nunique() == 1 and len(actual["fonte_sha256"].iloc[0]) == 64


def test_windows_run_over_the_bars_held_and_start_full(refined):
    frame = refined["tables"][BVSP_REFINED.name].set_index("data_pregao").sort_index()
    first = frame.iloc[:7]
    assert first["media_movel_7"].isna().sum() == 6 and first["media_movel_3"].isna().sum() == 2
    assert first["diferenca_7_sessoes"].isna().all() and first["diferenca_3_sessoes"].isna().sum() == 3
    after_gap = frame.loc[date(2024, 3, 18)]  # the bar before it is 2024-03-14: 2024-03-15 is not held
    assert after_gap["data_pregao_anterior"] == date(2024, 3, 14)
    closes = frame.loc[:date(2024, 3, 18), "preco_fechamento"].iloc[-3:]
    assert after_gap["media_movel_3"] == pytest.approx(closes.mean(), rel=1e-12)
    real = real_bvsp()
    assert after_gap["preco_fechamento"] == real.loc[date(2024, 3, 18), "Close"] == 126954.0


def test_monthly_figures_equal_pandas_and_partial_months_are_flagged(refined):
    actual = refined["tables"][BVSP_MENSAL.name]
    expected = expected_monthly(expected_refined(held_bars(skip=(LEFT_OUT,))))
    assert len(actual) == 18
    assert_same(actual, expected, ["ano", "mes", "ticker"])
    june = actual[(actual["ano"] == 2025) & (actual["mes"] == 6)].iloc[0]
    assert not june["mes_completo"] and june["ultimo_pregao"] == date(2025, 6, 27)
    assert actual[actual["ano"] == 2024]["mes_completo"].all()


def test_both_tables_are_registered_in_the_catalog(refined):
    glue = LocalGlueCatalog(str(refined["catalog"]))
    assert len(get_all_partitions(glue, "workspace_db", BVSP_REFINED.name)) == 371
    months = get_all_partitions(glue, "workspace_db", BVSP_MENSAL.name)
    assert sorted((int(p["Values"][0]), int(p["Values"][1])) for p in months)[:2] == [(2024, 1), (2024, 2)]
    assert len(months) == 18
    keys = glue.get_table(DatabaseName="workspace_db", Name=BVSP_MENSAL.name)["Table"]["PartitionKeys"]
    assert [(k["Name"], k["Type"]) for k in keys] == [("ano", "int"), ("mes", "int")]


def test_the_view_sql_runs_on_duckdb_and_equals_pandas(refined):
    view_def = load_view(VIEW)  # parses as Athena/Trino SQL and creates workspace_db.vw_bvsp_resumo_mensal
    assert view_def.sources == ("tb_bvsp_mensal",)
    con = duckdb.connect()
    con.execute("CREATE SCHEMA workspace_db")
    files = refined["lake"] / BVSP_MENSAL.prefix / "**" / "*.parquet"
    con.execute(f"CREATE VIEW workspace_db.tb_bvsp_mensal AS SELECT * FROM read_parquet('{files}', "
                "hive_partitioning = true, hive_types = {'ano': INTEGER, 'mes': INTEGER})")
    con.execute(view_def.statement_for("duckdb"))
    view = con.execute("SELECT * FROM workspace_db.vw_bvsp_resumo_mensal").fetchdf()
    view = view.sort_values(["ano", "mes"]).reset_index(drop=True)

    monthly = expected_monthly(expected_refined(held_bars(skip=(LEFT_OUT,)))).sort_values(["ano", "mes"])
    monthly = monthly.reset_index(drop=True)
    months = zip(monthly["ano"], monthly["mes"], strict=True)
    assert list(view["mes_referencia"].dt.date) == [date(a, m, 1) for a, m in months]
    expected_return = monthly["preco_fechamento_ultimo"] / monthly["preco_fechamento_ultimo"].shift(1) - 1
    np.testing.assert_allclose(view["retorno_mes"].to_numpy(dtype=float), expected_return.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(view["volatilidade_anualizada"],
                               monthly["volatilidade_retorno_diario"] * math.sqrt(252), rtol=1e-12)
    np.testing.assert_allclose(view["amplitude_mes_pct"], (monthly["preco_maximo_mes"] - monthly["preco_minimo_mes"])
                               / monthly["preco_minimo_mes"] * 100, rtol=1e-12)
    assert list(view["volume_total"]) == list(monthly["volume_total"])
    assert view["mes_completo"].tolist() == monthly["mes_completo"].tolist()


def test_a_session_loaded_late_refreshes_the_bars_whose_windows_include_it(refined):
    lake = refined["lake"]
    write_raw_prices(lake, LEFT_OUT, LEFT_OUT)
    code = prices_job.main(["--sessions", LEFT_OUT.isoformat(), "--lake_uri", str(lake), "--catalog", "local",
                            "--catalog_path", str(refined["catalog"]), "--JOB_RUN_ID", "jr_late"])
    assert code == 0
    actual = read_table(lake, BVSP_REFINED)
    full = expected_refined(held_bars())
    assert len(actual) == 372
    assert_same(actual, full, ["data_pregao", "ticker"])  # the 6 bars after it were rewritten too
    assert_same(read_table(lake, BVSP_MENSAL), expected_monthly(full), ["ano", "mes", "ticker"])
