-- vw_bvsp_resumo_mensal: the monthly summary of each ticker's prices (Athena / Trino dialect).
-- One row per ticker and month of workspace_db.tb_bvsp_mensal, with the month's return versus the
-- previous month held, its range in percent and the annualized volatility (252 sessions a year).
-- A month still open (mes_completo = false) is computed from its sessions so far.
CREATE OR REPLACE VIEW workspace_db.vw_bvsp_resumo_mensal AS
SELECT
    m.ticker,
    m.ano,
    m.mes,
    CAST(CONCAT(CAST(m.ano AS VARCHAR), '-', LPAD(CAST(m.mes AS VARCHAR), 2, '0'), '-01') AS DATE) AS mes_referencia,
    m.sessoes,
    m.primeiro_pregao,
    m.ultimo_pregao,
    m.preco_fechamento_medio,
    m.preco_minimo_mes,
    m.preco_maximo_mes,
    m.preco_fechamento_ultimo,
    m.preco_fechamento_ultimo
        / LAG(m.preco_fechamento_ultimo) OVER (PARTITION BY m.ticker ORDER BY m.ano, m.mes) - 1 AS retorno_mes,
    (m.preco_maximo_mes - m.preco_minimo_mes) / m.preco_minimo_mes * 100 AS amplitude_mes_pct,
    m.volume_total,
    m.volatilidade_retorno_diario,
    m.volatilidade_retorno_diario * SQRT(252) AS volatilidade_anualizada,
    m.mes_completo
FROM workspace_db.tb_bvsp_mensal AS m
