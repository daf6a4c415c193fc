"""Independent pandas computations of the views, from the RAW Parquet (never the refined tables or the SQL)."""

from __future__ import annotations

import math
from datetime import date
from itertools import pairwise

import pandas as pd
from refine_lake import read_raw_pandas


def read_raw(lake) -> pd.DataFrame:
    """Every raw row of a lake, ``data_pregao`` as ``datetime.date``."""
    frame = read_raw_pandas(lake)
    return frame.assign(data_pregao=frame["data_pregao"].map(lambda d: d if isinstance(d, date) else d.date()))


def previous_sessions(raw: pd.DataFrame) -> dict[tuple[str, date], date]:
    """(index, session) → the index's previous session present in raw."""
    out = {}
    for index, rows in raw.groupby("indice"):
        days = sorted(rows["data_pregao"].unique())
        out.update({(index, day): prev for prev, day in pairwise(days)})
    return out


def expected_changes(raw: pd.DataFrame) -> pd.DataFrame:
    book = {key: rows.set_index("cod") for key, rows in raw.groupby(["indice", "data_pregao"])}
    out = []
    for (index, day), prev in previous_sessions(raw).items():
        now, before = book[(index, day)], book[(index, prev)]
        for cod in sorted(set(now.index) - set(before.index)):
            out.append((index, day, prev, cod, now.at[cod, "asset"], "inclusao", now.at[cod, "part"], None))
        for cod in sorted(set(before.index) - set(now.index)):
            out.append((index, day, prev, cod, before.at[cod, "asset"], "exclusao", None, before.at[cod, "part"]))
    return pd.DataFrame(out, columns=["indice", "data_pregao", "data_pregao_anterior", "codigo", "acao", "evento",
                                      "participacao_pct", "participacao_anterior_pct"])


def expected_composition(raw: pd.DataFrame) -> pd.DataFrame:
    totals = (raw.groupby(["indice", "data_pregao", "segment"], dropna=False)
              .agg(participacao_total_pct=("part", "sum"), qtd_acoes=("cod", "size"),
                   qtd_teorica_total=("theorical_qty", "sum"))
              .reset_index().rename(columns={"segment": "setor"}))
    # Weights have 3 decimals: their exact sums have 3 too (the refine job sums in DECIMAL).
    totals["participacao_total_pct"] = totals["participacao_total_pct"].round(3)
    totals = totals.sort_values(["indice", "data_pregao", "participacao_total_pct", "setor"],
                                ascending=[True, True, False, True], na_position="last")
    by_session = totals.groupby(["indice", "data_pregao"])
    totals["posicao"] = by_session.cumcount() + 1
    totals["participacao_acumulada_pct"] = by_session["participacao_total_pct"].cumsum()
    return totals


def expected_changes_in_weight(raw: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    prev = previous_sessions(raw)
    rows = raw.assign(data_pregao_anterior=[prev.get(k) for k in zip(raw["indice"], raw["data_pregao"], strict=True)])
    before = raw[["indice", "data_pregao", "cod", "part"]].rename(
        columns={"data_pregao": "data_pregao_anterior", "part": "participacao_anterior_pct"})
    both = rows.merge(before, on=["indice", "data_pregao_anterior", "cod"], how="inner")
    both["variacao_participacao_pp"] = (both["part"] - both["participacao_anterior_pct"]).round(3)
    both["_abs"] = both["variacao_participacao_pp"].abs()
    both = both.sort_values(["indice", "data_pregao", "_abs", "cod"], ascending=[True, True, False, True])
    both["posicao"] = both.groupby(["indice", "data_pregao"]).cumcount() + 1
    both = both[both["posicao"] <= top]
    return both.rename(columns={"cod": "codigo", "asset": "acao", "part": "participacao_pct"})[
        ["indice", "data_pregao", "data_pregao_anterior", "codigo", "acao", "participacao_anterior_pct",
         "participacao_pct", "variacao_participacao_pp", "posicao"]]


def _cell(value):
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value.item() if hasattr(value, "item") else value


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    """Same columns, same keys, every value equal (doubles within 1e-9)."""
    assert list(actual.columns) == list(expected.columns)
    got = {tuple(_cell(r[k]) for k in keys): r for r in actual.to_dict("records")}
    want = {tuple(_cell(r[k]) for k in keys): r for r in expected.to_dict("records")}
    assert len(got) == len(actual) and len(want) == len(expected)
    assert got.keys() == want.keys()
    bad = []
    for key, row in want.items():
        for column, value in row.items():
            a, e = _cell(got[key][column]), _cell(value)
            same = a == e or (isinstance(a, float) and isinstance(e, float) and math.isclose(a, e, abs_tol=1e-9))
            if not same:
                bad.append((key, column, a, e))
    assert not bad, f"{len(bad)} mismatches, e.g. {bad[:5]}"
