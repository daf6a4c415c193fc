"""`bovespa`: inspect B3 files, load sessions, backfill, run the offline demo, open the Dagster UI.

Runs started here are ordinary Dagster runs recorded in the instance under BOVESPA_HOME, so
`bovespa dev` (or `dagster dev` with the same DAGSTER_HOME) shows them afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from .b3.parse import read_portfolio_file
from .b3.snapshot import B3DataError, PortfolioSnapshot
from .refine.tables import MOVING_WINDOWS
from .settings import SAMPLE_ARCHIVE, ConfigError, Settings


class UsageError(ValueError):
    """A command-line value that cannot work; printed as one line, exit code 2."""


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _indices(values: list[str] | None, settings: Settings) -> list[str]:
    if not values:
        return list(settings.indices)
    return [i.strip().upper() for value in values for i in value.split(",") if i.strip()]


def _settings_for(args: argparse.Namespace, **overrides) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "archive", None):
        if not Path(args.archive).is_dir() and "://" not in args.archive:
            raise UsageError(f"--archive {args.archive}: no such folder")
        overrides["archive_uri"] = args.archive
    indices = _indices(getattr(args, "index", None), settings)
    return dataclasses.replace(settings, indices=tuple(indices), **overrides)


# ---------------------------------------------------------------- inspect
def _table(snapshot: PortfolioSnapshot) -> str:
    lines = [
        f"{snapshot.indice} {snapshot.data_pregao}  {len(snapshot.rows)} assets  "
        f"total qty {snapshot.qtd_teorica_total:,}  reductor {snapshot.redutor}  "
        f"({snapshot.provenance.source}, sha256 {snapshot.provenance.sha256[:12]})",
        f"{'codigo':<8} {'acao':<16} {'tipo':<12} {'part %':>7} {'qtd_teorica':>16}  setor",
    ]
    for r in snapshot.rows:
        lines.append(
            f"{r.codigo:<8} {r.acao[:16]:<16} {r.tipo:<12} {r.participacao_pct:>7.3f} "
            f"{r.qtd_teorica:>16,}  {r.setor or ''}"
        )
    return "\n".join(lines)


def cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        payload = path.read_bytes()
    except OSError as exc:
        print(f"bovespa inspect: {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        snapshot = read_portfolio_file(str(path), payload)
    except B3DataError as exc:
        print(f"bovespa inspect: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(snapshot.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(_table(snapshot))
    return 0


# ---------------------------------------------------------------- run / backfill / demo
def _report(report, echo=print) -> None:
    from .runner import format_outcome

    loaded, missing, failed = report.of("loaded"), report.of("missing"), report.of("failed")
    rows = sum(o.rows for o in loaded)
    echo(f"\nloaded {len(loaded)} session(s), {rows:,} rows; {len(missing)} without data; {len(failed)} failed")
    by_index: dict[str, list[date]] = {}
    for outcome in missing:
        by_index.setdefault(outcome.index, []).append(outcome.session)
    for index, days in sorted(by_index.items()):
        shown = ", ".join(str(d) for d in days[:8]) + (f", … ({len(days) - 8} more)" if len(days) > 8 else "")
        echo(f"  {index}: no publication for {len(days)} session(s): {shown}")
    for outcome in failed:
        echo("  " + format_outcome(outcome))


def cmd_run(args: argparse.Namespace) -> int:
    from .partitions import is_session
    from .runner import Runner, format_outcome

    settings = _settings_for(args)
    if not is_session(args.date):
        raise UsageError(f"{args.date} is not a B3 trading session (weekend or B3 holiday)")
    if args.date < date.fromisoformat(settings.start_date):
        raise UsageError(f"{args.date} is before the first partition ({settings.start_date}; BOVESPA_START_DATE)")
    runner = Runner(settings)
    outcomes = runner.run_sessions([args.date], list(settings.indices))
    for outcome in outcomes:
        print(format_outcome(outcome))
    loaded = all(o.status == "loaded" for o in outcomes)
    refined = _refine(runner, [args.date], args) if loaded else True
    return 0 if loaded and refined else 1


DATASETS = {"carteira": ["raw/carteira"], "cotacoes": ["raw/cotacoes"], "all": ["raw/carteira", "raw/cotacoes"]}


def _refine(runner, sessions: list[date], args: argparse.Namespace, dataset: str = "carteira") -> bool:
    """Raw → event → Lambda handler → Glue job(s) → catalog → Dagster events; True if every run succeeded."""
    if getattr(args, "skip_refine", False) or not sessions:
        return True
    runs = runner.refine(sessions, DATASETS[dataset])
    refined = all(run.get("JobRunState") == "SUCCEEDED" for run in runs)
    if not runs or not refined:
        return refined
    report = runner.refresh_views()
    for line in report.lines():
        runner.echo(line)
    return report.success


def cmd_backfill(args: argparse.Namespace) -> int:
    from .runner import Runner

    if args.end < args.start:
        raise UsageError(f"--end {args.end} is before --start {args.start}")
    settings = _settings_for(args)
    if args.sessions_per_run:
        settings = dataclasses.replace(settings, sessions_per_run=args.sessions_per_run)
    runner = Runner(settings)
    reports = []
    if args.dataset in ("carteira", "all"):
        reports.append(runner.backfill(list(settings.indices), args.start, args.end))
        _report(reports[-1])
    if args.dataset in ("cotacoes", "all"):
        reports.append(runner.backfill_prices(list(settings.price_symbols), args.start, args.end))
        _report(reports[-1])
    loaded = sorted({o.session for report in reports for o in report.of("loaded")})
    refined = _refine(runner, loaded, args, args.dataset)
    return 0 if all(r.ok for r in reports) and refined else 1


def _demo_summary(settings: Settings, runner) -> None:
    import duckdb

    raw = Path(settings.lake_uri) / "raw" / "carteira"
    con = duckdb.connect()
    glob = str(raw / "**" / "*.parquet")
    con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    sessions, rows, first, last = con.execute(
        "SELECT count(DISTINCT data_pregao), count(*), min(data_pregao), max(data_pregao) FROM raw"
    ).fetchone()
    print(f"\nlake: {raw}  ({sessions} sessions, {rows:,} rows, {first} … {last})")
    print(f"largest weights on {last}:")
    for cod, asset, part in con.execute(
        "SELECT cod, asset, part FROM raw WHERE data_pregao = (SELECT max(data_pregao) FROM raw) "
        "ORDER BY part DESC LIMIT 5"
    ).fetchall():
        print(f"  {cod:<7} {asset:<16} {part:6.3f}%")

    engine = runner.defs.resources["query_engine"].open_engine()
    try:
        _refined_summary(engine, runner)
    finally:
        engine.close()


def _refined_summary(engine, runner) -> None:
    from .query.output import render
    from .refine.catalog import get_all_partitions
    from .refine.tables import TABLES

    if "tb_carteira_refined" not in engine.tables():
        return
    rows, sessions, entries, exits = engine.query(
        "SELECT count(*), count(DISTINCT data_pregao), count_if(flag_entrada), count_if(flag_saida) "
        "FROM workspace_db.tb_carteira_refined"
    ).iloc[0].tolist()
    print(f"\nrefined: workspace_db.tb_carteira_refined  ({rows:,} rows, {sessions} sessions; "
          f"{entries} entries, {exits} exits flagged)")
    catalog = runner.defs.resources["refine"].catalog()
    counts = [f"{t.name} {len(get_all_partitions(catalog, 'workspace_db', t.name)):,}" for t in TABLES]
    print("catalog partitions: " + ", ".join(counts))
    for view, sql in DEMO_VIEW_QUERIES.items():
        if view not in {v.name for v in engine.views}:
            continue
        print(f"\n{view} ({engine.name}): {sql}")
        print(render(engine.query(sql), "table"))
    for reason in engine.skipped.values():
        print(f"\n{reason}")
    print('\nquery them: bovespa query "SELECT evento, count(*) FROM vw_mudancas_carteira GROUP BY 1" --format json')


# What the demo prints of each view: a few rows a user would look at first.
DEMO_VIEW_QUERIES = {
    "vw_composicao_setorial": "SELECT data_pregao, setor, participacao_total_pct, qtd_acoes "
    "FROM vw_composicao_setorial "
    "WHERE data_pregao = (SELECT max(data_pregao) FROM vw_composicao_setorial WHERE setor IS NOT NULL) "
    "ORDER BY posicao LIMIT 5",
    "vw_mudancas_carteira": "SELECT data_pregao, data_pregao_anterior, codigo, acao, evento FROM vw_mudancas_carteira "
    "ORDER BY data_pregao DESC, evento, codigo LIMIT 6",
    "vw_variacao_participacao": "SELECT data_pregao, codigo, participacao_anterior_pct, participacao_pct, "
    "variacao_participacao_pp FROM vw_variacao_participacao "
    "WHERE data_pregao = (SELECT max(data_pregao) FROM vw_variacao_participacao) ORDER BY posicao LIMIT 5",
    "vw_bvsp_resumo_mensal": "SELECT ticker, mes_referencia, sessoes, preco_fechamento_ultimo, retorno_mes, "
    "volatilidade_anualizada, mes_completo FROM vw_bvsp_resumo_mensal ORDER BY mes_referencia DESC LIMIT 4",
}


def _monthly_summary(settings: Settings) -> None:
    import duckdb

    monthly = Path(settings.lake_uri) / "refined" / "tb_bvsp_mensal"
    if not monthly.exists():
        return
    con = duckdb.connect()
    rows = con.execute(
        "SELECT ano, mes, ticker, sessoes, preco_fechamento_medio, preco_minimo_mes, preco_maximo_mes, volume_total, "
        "volatilidade_retorno_diario, mes_completo "
        f"FROM read_parquet('{monthly}/**/*.parquet', hive_partitioning = true) "
        "ORDER BY ano DESC, mes DESC, ticker LIMIT 4"
    ).fetchall()
    print("\nmonthly summary, workspace_db.tb_bvsp_mensal (latest months; sessions = bars loaded in the month):")
    print(f"  {'month':<8} {'ticker':<6} {'sessions':>8} {'avg close':>11} {'low':>9} {'high':>9} "
          f"{'volume':>13} {'vol. σ':>7}")
    for ano, mes, ticker, sessoes, media, low, high, volume, sigma, complete in rows:
        sigma_text = f"{sigma * 100:6.2f}%" if sigma is not None else "      -"
        print(f"  {ano:04d}-{mes:02d}  {ticker:<6} {sessoes:>8} {media:>11,.2f} {low:>9,.0f} {high:>9,.0f} "
              f"{volume:>13,} {sigma_text}" + ("" if complete else "  (partial: no later bar yet)"))


def demo_price_sessions(days: list[date], lookback: int) -> set[date]:
    """The sample's sessions, each with the ``lookback`` sessions before it (so its windows are full)."""
    from datetime import timedelta

    from .partitions import sessions_between

    wanted: set[date] = set()
    for day in days:
        wanted.update(sessions_between(day - timedelta(days=lookback * 2 + 20), day)[-(lookback + 1):])
    return wanted


def cmd_demo(args: argparse.Namespace) -> int:
    from .b3.archive import PortfolioArchive
    from .runner import Runner

    settings = _settings_for(args, offline=True)
    if not getattr(args, "archive", None):
        settings = dataclasses.replace(settings, archive_uri=SAMPLE_ARCHIVE)
    archive = PortfolioArchive(settings.archive_uri)
    days = sorted({d for index in settings.indices for d in archive.sessions(index)})
    if not days:
        raise UsageError(f"the archive {settings.archive_uri} has no file for {', '.join(settings.indices)}")
    print(f"bovespa demo (offline): {len(days)} archived session(s) of {', '.join(settings.indices)} "
          f"from {archive.uri}")
    runner = Runner(settings)
    report = runner.backfill(list(settings.indices), days[0], days[-1], label="demo")
    _report(report)
    # Prices for the sample's sessions and the 7 before each one, so every 7-session figure is there.
    price_days = demo_price_sessions(days, max(MOVING_WINDOWS))
    prices = runner.backfill_prices(list(settings.price_symbols), min(price_days), max(price_days),
                                    only=price_days, label="demo prices")
    _report(prices)
    loaded = sorted({o.session for r in (report, prices) for o in r.of("loaded")})
    refined = _refine(runner, loaded, args, "all")  # both jobs, in parallel
    if report.of("loaded"):
        _demo_summary(settings, runner)
    _monthly_summary(settings)
    print(f"\nDagster instance: {os.environ['DAGSTER_HOME']}\nsee the runs and assets: bovespa dev  "
          "(then open http://127.0.0.1:3000)")
    return 0 if report.ok and prices.ok and refined else 1


def cmd_query(args: argparse.Namespace) -> int:
    """Athena (Trino) SQL against the active target: DuckDB over the local lake, or Athena."""
    from .query.output import render
    from .query.views import QueryError, ViewDefinitionError
    from .resources import resources_for

    settings = Settings.from_env()
    try:
        engine = resources_for(settings)["query_engine"].open_engine()
    except (QueryError, ViewDefinitionError) as exc:
        print(f"bovespa query: {exc}", file=sys.stderr)
        return 1
    try:
        for reason in engine.skipped.values():
            print(f"bovespa query: {reason}", file=sys.stderr)
        frame = engine.query(args.sql)
    except QueryError as exc:
        print(f"bovespa query: {exc}", file=sys.stderr)
        if not engine.tables():
            print(f"bovespa query: no refined tables on the {settings.target} target yet "
                  "(load sessions first: bovespa demo, bovespa backfill)", file=sys.stderr)
        return 1
    finally:
        engine.close()
    print(render(frame, args.format))
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """`dagster dev` on this project's definitions and this project's instance."""
    from .runner import DAGSTER_ENV

    settings = Settings.from_env()
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ.update(DAGSTER_ENV)
    command = ["dagster", "dev", "-m", "bovespa_assets.definitions", *args.dagster_args]
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']} {' '.join(command)}", flush=True)
    os.execvp(command[0], command)
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bovespa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="print the normalized snapshot of one B3 file")
    p.add_argument("file")
    p.add_argument("--format", choices=("json", "table"), default="table")
    p.set_defaults(func=cmd_inspect)

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", action="append", help="index code(s), e.g. IBOV or IBOV,IBXX (BOVESPA_INDICES)")
        p.add_argument("--archive", help="folder of archived B3 files for past sessions (BOVESPA_ARCHIVE)")

    def refine_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--skip-refine", action="store_true",
                       help="load raw only (the refine sensors pick the new objects up later)")

    p = sub.add_parser("run", help="load one session")
    p.add_argument("--date", type=_iso_date, required=True, help="the session, YYYY-MM-DD")
    sources(p)
    refine_flag(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("backfill", help="load every session of a date range that has data")
    p.add_argument("--start", type=_iso_date, required=True)
    p.add_argument("--end", type=_iso_date, required=True)
    p.add_argument("--sessions-per-run", type=int, help="sessions per Dagster run (BOVESPA_SESSIONS_PER_RUN)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="carteira",
                   help="carteira (B3 portfolios, the default), cotacoes (daily prices of BOVESPA_PRICE_SYMBOLS "
                   "from the price archive, else Yahoo) or all")
    sources(p)
    refine_flag(p)
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("demo", help="offline: load the bundled sample archive and summarize it")
    sources(p)
    refine_flag(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("query", help="run SQL (Athena dialect) on the views and tables: DuckDB locally, Athena on aws")
    p.add_argument("sql", help='e.g. "SELECT evento, count(*) FROM vw_mudancas_carteira GROUP BY 1"')
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("dev", help="open the Dagster UI on this project's instance (dagster dev)")
    p.add_argument("dagster_args", nargs=argparse.REMAINDER, help="passed on to dagster dev")
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ConfigError, B3DataError) as exc:
        print(f"bovespa {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
