-- One row per index, session and ticker that entered (evento = 'inclusao') or left
-- (evento = 'exclusao') the portfolio versus the index's previous available session: the previous
-- session present in tb_carteira_refined for that index, which may be weeks earlier when the
-- archive has gaps. An index's first session has no previous one, so it has no events.
CREATE OR REPLACE VIEW workspace_db.vw_mudancas_carteira AS
WITH sessoes AS (
    SELECT DISTINCT indice, data_pregao
    FROM workspace_db.tb_carteira_refined
),
pares AS (
    SELECT
        indice,
        data_pregao,
        lag(data_pregao) OVER (PARTITION BY indice ORDER BY data_pregao) AS data_pregao_anterior
    FROM sessoes
)
SELECT
    p.indice,
    p.data_pregao,
    p.data_pregao_anterior,
    atual.codigo,
    atual.acao,
    'inclusao' AS evento,
    atual.participacao_pct,
    CAST(NULL AS double) AS participacao_anterior_pct
FROM pares AS p
JOIN workspace_db.tb_carteira_refined AS atual
    ON atual.indice = p.indice AND atual.data_pregao = p.data_pregao
LEFT JOIN workspace_db.tb_carteira_refined AS anterior
    ON anterior.indice = p.indice AND anterior.data_pregao = p.data_pregao_anterior
    AND anterior.codigo = atual.codigo
WHERE p.data_pregao_anterior IS NOT NULL AND anterior.codigo IS NULL
UNION ALL
SELECT
    p.indice,
    p.data_pregao,
    p.data_pregao_anterior,
    anterior.codigo,
    anterior.acao,
    'exclusao' AS evento,
    CAST(NULL AS double) AS participacao_pct,
    anterior.participacao_pct AS participacao_anterior_pct
FROM pares AS p
JOIN workspace_db.tb_carteira_refined AS anterior
    ON anterior.indice = p.indice AND anterior.data_pregao = p.data_pregao_anterior
LEFT JOIN workspace_db.tb_carteira_refined AS atual
    ON atual.indice = p.indice AND atual.data_pregao = p.data_pregao AND atual.codigo = anterior.codigo
WHERE atual.codigo IS NULL
