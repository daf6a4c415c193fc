"""Data checks on the views, as SQL in Athena's dialect: each query returns the rows that break the rule.

Pure definitions (no Dagster, no engine): the view assets run them with whatever engine the target
uses, so a check means the same on DuckDB and on Athena. No rows returned means the check passed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..refine.tables import DATABASE

WEIGHT_TOLERANCE_PP = 0.01  # B3 publishes weights with 3 decimals that add up to 100.000


@dataclass(frozen=True)
class ViewCheck:
    view: str
    name: str
    description: str
    violations_sql: str  # Athena/Trino SQL returning the offending rows


_SECTOR_WEIGHTS = f"""
SELECT indice, data_pregao, sum(participacao_total_pct) AS soma_pct, count(*) AS setores
FROM {DATABASE}.vw_composicao_setorial
GROUP BY indice, data_pregao
HAVING abs(sum(participacao_total_pct) - 100) > {WEIGHT_TOLERANCE_PP}
ORDER BY indice, data_pregao
"""

# The previous session is recomputed here from the table (not taken from the view), so a view that
# compared against the wrong session fails.
_EVENTS = f"""
SELECT m.indice, m.data_pregao, m.data_pregao_anterior, m.codigo, m.evento,
       atual.codigo IS NOT NULL AS na_sessao, anterior.codigo IS NOT NULL AS na_sessao_anterior
FROM {DATABASE}.vw_mudancas_carteira AS m
LEFT JOIN {DATABASE}.tb_carteira_refined AS atual
    ON atual.indice = m.indice AND atual.data_pregao = m.data_pregao AND atual.codigo = m.codigo
LEFT JOIN {DATABASE}.tb_carteira_refined AS anterior
    ON anterior.indice = m.indice AND anterior.data_pregao = m.data_pregao_anterior AND anterior.codigo = m.codigo
WHERE m.evento = '{{evento}}' AND (
    {{broken}}
    OR m.data_pregao_anterior IS NULL
    OR m.data_pregao_anterior <> (
        SELECT max(s.data_pregao) FROM {DATABASE}.tb_carteira_refined AS s
        WHERE s.indice = m.indice AND s.data_pregao < m.data_pregao
    )
)
ORDER BY m.indice, m.data_pregao, m.codigo
"""

CHECKS: tuple[ViewCheck, ...] = (
    ViewCheck(
        "vw_composicao_setorial",
        "pesos_setoriais_somam_100",
        f"The sector weights of every index and session add up to 100 within {WEIGHT_TOLERANCE_PP} pp.",
        _SECTOR_WEIGHTS,
    ),
    ViewCheck(
        "vw_mudancas_carteira",
        "inclusoes_coerentes",
        "Every inclusion is in its own session and absent from the index's previous available session.",
        _EVENTS.format(evento="inclusao", broken="atual.codigo IS NULL OR anterior.codigo IS NOT NULL"),
    ),
    ViewCheck(
        "vw_mudancas_carteira",
        "exclusoes_coerentes",
        "Every exclusion is in the index's previous available session and absent from its own.",
        _EVENTS.format(evento="exclusao", broken="atual.codigo IS NOT NULL OR anterior.codigo IS NULL"),
    ),
)


def checks_for(view: str) -> list[ViewCheck]:
    return [check for check in CHECKS if check.view == view]
