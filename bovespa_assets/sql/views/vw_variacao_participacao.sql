-- The 10 largest weight changes of each index and session versus its previous available session,
-- in percentage points, largest absolute change first (ties by ticker). Only tickers present in
-- both sessions have a change; entries and exits are in vw_mudancas_carteira.
CREATE OR REPLACE VIEW workspace_db.vw_variacao_participacao AS
SELECT
    indice,
    data_pregao,
    data_pregao_anterior,
    codigo,
    acao,
    participacao_anterior_pct,
    participacao_pct,
    variacao_participacao_pp,
    posicao
FROM (
    SELECT
        indice,
        data_pregao,
        data_pregao_anterior,
        codigo,
        acao,
        participacao_anterior_pct,
        participacao_pct,
        variacao_participacao_pp,
        row_number() OVER (
            PARTITION BY indice, data_pregao
            ORDER BY abs(variacao_participacao_pp) DESC, codigo ASC
        ) AS posicao
    FROM workspace_db.tb_carteira_refined
    WHERE variacao_participacao_pp IS NOT NULL
) AS ranked
WHERE posicao <= 10
