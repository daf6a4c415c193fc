-- Sector weights per index and session, largest first: the sector's total weight, its rank in the
-- session and the cumulative weight down to it (how much of the index the top sectors make). The
-- sector is null where the source publishes none (B3's CSV downloads); that group is kept, so the
-- weights of every session add up to 100.
CREATE OR REPLACE VIEW workspace_db.vw_composicao_setorial AS
SELECT
    indice,
    data_pregao,
    setor,
    participacao_total_pct,
    qtd_acoes,
    qtd_teorica_total,
    row_number() OVER (
        PARTITION BY indice, data_pregao
        ORDER BY participacao_total_pct DESC, setor ASC NULLS LAST
    ) AS posicao,
    sum(participacao_total_pct) OVER (
        PARTITION BY indice, data_pregao
        ORDER BY participacao_total_pct DESC, setor ASC NULLS LAST
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS participacao_acumulada_pct
FROM workspace_db.tb_setor_diario
