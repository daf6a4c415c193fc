"""PNG charts of the views (matplotlib, Agg; no display needed): pure DataFrames in, PNG bytes out.

- sector weights: the latest session of each index that carries sectors. B3's CSV downloads
  publish none, so the latest session overall may have only the "no sector" group; the chart then
  takes the latest session that has them and its title says which session it shows and why.
- composition changes: inclusions (up) and exclusions (down) per session, against the index's
  previous available session, one bar per session held in the lake.
"""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

NO_SECTOR = "(sector not published)"
_PNG_METADATA = {"Software": None}  # no version stamp: the same data gives the same bytes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, metadata=_PNG_METADATA)
    return buffer.getvalue()


def sector_session(composition: pd.DataFrame, index: str) -> tuple[date, bool]:
    """The session to chart for ``index``: its latest with sectors (True), else its latest (False)."""
    rows = composition[composition["indice"] == index]
    with_sectors = rows[rows["setor"].notna()]
    if len(with_sectors):
        return max(with_sectors["data_pregao"]), True
    return max(rows["data_pregao"]), False


def sector_weights_png(composition: pd.DataFrame) -> bytes:
    """Horizontal bars of sector weights (vw_composicao_setorial rows), one panel per index."""
    indices = sorted(composition["indice"].unique())
    if not indices:
        raise ValueError("vw_composicao_setorial is empty: no session to chart")
    panels = []
    for index in indices:
        session, has_sectors = sector_session(composition, index)
        rows = composition[(composition["indice"] == index) & (composition["data_pregao"] == session)]
        rows = rows.assign(setor=rows["setor"].fillna(NO_SECTOR)).sort_values("participacao_total_pct")
        panels.append((index, session, has_sectors, rows))
    height = sum(1.2 + 0.22 * len(rows) for *_, rows in panels)
    figure = Figure(figsize=(10, max(3.0, height)), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (index, session, has_sectors, rows) in zip(axes, panels, strict=True):
        ax.barh(rows["setor"], rows["participacao_total_pct"], color="#2a6f97")
        for y, value in enumerate(rows["participacao_total_pct"]):
            ax.text(value, y, f" {value:.2f}%", va="center", fontsize=7)
        latest = max(composition.loc[composition["indice"] == index, "data_pregao"])
        note = "" if session == latest else f"; later sessions up to {latest} carry no sector"
        ax.set_title(f"{index} sector weights, session {session}"
                     f"{'' if has_sectors else ' (source publishes no sector)'}{note}", fontsize=10)
        ax.set_xlabel("weight in the index (%)")
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlim(0, rows["participacao_total_pct"].max() * 1.15)
    return _png(figure)


def composition_changes_png(changes: pd.DataFrame, sessions: pd.DataFrame) -> bytes:
    """Inclusions and exclusions per session (vw_mudancas_carteira rows; ``sessions``: indice, data_pregao)."""
    indices = sorted(sessions["indice"].unique())
    if not indices:
        raise ValueError("no session to chart")
    figure = Figure(figsize=(12, 3.6 * len(indices)), layout="constrained")
    axes = figure.subplots(len(indices), 1, squeeze=False)[:, 0]
    for ax, index in zip(axes, indices, strict=True):
        days = sorted(sessions.loc[sessions["indice"] == index, "data_pregao"].unique())
        mine = changes[changes["indice"] == index]
        counts = mine.groupby(["data_pregao", "evento"]).size()
        ins = [int(counts.get((d, "inclusao"), 0)) for d in days]
        outs = [int(counts.get((d, "exclusao"), 0)) for d in days]
        x = range(len(days))
        ax.bar(x, ins, color="#2a9d8f", label="inclusions (inclusao)")
        ax.bar(x, [-n for n in outs], color="#e76f51", label="exclusions (exclusao)")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(list(x), [str(d) for d in days], rotation=90, fontsize=7)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{abs(value):.0f}"))
        ax.set_ylabel("tickers")
        ax.set_title(f"{index} composition changes per session, versus the previous session held "
                     f"({len(days)} sessions, {sum(ins)} inclusions, {sum(outs)} exclusions)", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    return _png(figure)
