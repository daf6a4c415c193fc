"""View assets: the SQL views over the refined tables, their data checks, and charts of them.

One asset per view file (``bovespa_assets/sql/views``), downstream of the tables and views it
reads, so the lineage goes raw → refined → views → charts. They are refreshed automatically when
a refined partition is materialized (the sensors record the Glue runs) through a declarative
automation condition, and the CLI refreshes them right after its refine step. Materializing a view
creates it in ``workspace_db`` (Athena) or in the DuckDB session over the local lake, then runs its
checks. A view whose sources are not in the lake is skipped with the reason in the run's log.
"""

from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from ..lake import Lake
from ..observe import refined_key
from ..query import charts
from ..query.checks import ViewCheck, checks_for
from ..query.views import ViewDef, load_views
from ..refine.tables import CARTEIRA, DATABASE
from ..resources import LakeResource, QueryEngineResource

GROUP = "views"
CHARTS_KEY = AssetKey(["charts", "carteira"])
CHARTS_PREFIX = "charts"
SECTOR_CHART = f"{CHARTS_PREFIX}/pesos_setoriais.png"
CHANGES_CHART = f"{CHARTS_PREFIX}/mudancas_carteira.png"
PREVIEW_ROWS = 10
SKIPPED = "skipped"  # metadata of the observation recorded when a view cannot be created yet

# Any upstream update (a refined partition, or a view for the charts) since this asset was last
# requested or materialized; not while upstream or this asset is still running.
REFRESH_ON_UPSTREAM_UPDATE = (
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("refresh when upstream data updates")


def view_key(name: str) -> AssetKey:
    return AssetKey(["views", name])


def _source_key(source: str, view_names: set[str]) -> AssetKey:
    return view_key(source) if source in view_names else refined_key(source)


def _check_result(engine, view: ViewDef, check: ViewCheck) -> AssetCheckResult:
    violations = engine.query(check.violations_sql)
    return AssetCheckResult(
        asset_key=view_key(view.name),
        check_name=check.name,
        passed=violations.empty,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "violations": len(violations),
            "sample": MetadataValue.md(violations.head(PREVIEW_ROWS).to_markdown(index=False) or "none"),
            "sql": MetadataValue.md(f"```sql\n{check.violations_sql.strip()}\n```"),
        },
    )


def _view_metadata(engine, view: ViewDef, statement: str) -> dict:
    rows = int(engine.query(f"SELECT count(*) AS n FROM {view.qualified_name}").iloc[0, 0])
    preview = engine.query(f"SELECT * FROM {view.qualified_name} LIMIT {PREVIEW_ROWS}")
    metadata = {
        "dagster/row_count": rows,
        "view": view.qualified_name,
        "engine": engine.name,
        "sources": ", ".join(f"{DATABASE}.{s}" for s in view.sources),
        "sql_file": MetadataValue.path(str(view.path)),
        "athena_sql": MetadataValue.md(f"```sql\n{view.statement}\n```"),
        "preview": MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "(no rows)"),
    }
    if statement != view.statement:
        metadata[f"{engine.name}_sql"] = MetadataValue.md(f"```sql\n{statement}\n```")
    return metadata


def build_view_assets(views: list[ViewDef] | None = None):
    """One multi-asset creating every view in dependency order (one engine session for them all)."""
    views = load_views() if views is None else views
    names = {view.name for view in views}
    specs = [
        AssetSpec(
            view_key(view.name),
            deps=[_source_key(source, names) for source in view.sources],
            description=f"{view.description} View {view.qualified_name} ({view.path.name}).",
            group_name=GROUP,
            kinds={"sql"},
            skippable=True,
            automation_condition=REFRESH_ON_UPSTREAM_UPDATE,
            metadata={"view": view.qualified_name},
        )
        for view in views
    ]
    check_specs = [
        AssetCheckSpec(check.name, asset=view_key(view.name), description=check.description)
        for view in views
        for check in checks_for(view.name)
    ]

    @multi_asset(name="query_views", specs=specs, check_specs=check_specs, can_subset=True)
    def query_views(context: AssetExecutionContext, query_engine: QueryEngineResource) -> Iterator[Any]:
        engine = query_engine.open_engine()
        try:
            for name, reason in engine.skipped.items():
                if view_key(name) in context.selected_asset_keys:
                    context.log.warning(reason)
                    context.log_event(AssetObservation(asset_key=view_key(name), metadata={SKIPPED: reason}))
            for view in engine.views:
                key = view_key(view.name)
                selected_checks = {k.name for k in context.selected_asset_check_keys if k.asset_key == key}
                statement = engine.create_view(view) if key in context.selected_asset_keys else None
                results = [_check_result(engine, view, c) for c in checks_for(view.name) if c.name in selected_checks]
                if statement is not None:
                    yield MaterializeResult(asset_key=key, metadata=_view_metadata(engine, view, statement),
                                            check_results=results)
                else:  # only its checks were selected: run them on the view as it is
                    yield from results
        finally:
            engine.close()

    return query_views


@multi_asset(
    name="charts_carteira",
    specs=[AssetSpec(
        CHARTS_KEY,
        deps=[view_key("vw_composicao_setorial"), view_key("vw_mudancas_carteira"), refined_key(CARTEIRA.name)],
        description="PNG charts: sector weights of the latest session with sectors, and composition changes "
        "(inclusions/exclusions) per session. Written under <lake>/charts/; the paths are in the metadata.",
        group_name=GROUP,
        kinds={"python"},
        skippable=True,
        automation_condition=REFRESH_ON_UPSTREAM_UPDATE,
    )],
)
def charts_carteira(
    context: AssetExecutionContext, query_engine: QueryEngineResource, lake: LakeResource
) -> Iterator[MaterializeResult]:
    engine = query_engine.open_engine()
    try:
        needed = {"vw_composicao_setorial", "vw_mudancas_carteira"}
        missing = sorted(needed - {view.name for view in engine.views})
        if missing:
            reason = f"skipped the charts: {'; '.join(engine.skipped.get(m, m) for m in missing)}"
            context.log.warning(reason)
            context.log_event(AssetObservation(asset_key=CHARTS_KEY, metadata={SKIPPED: reason}))
            return
        composition = engine.query(f"SELECT * FROM {DATABASE}.vw_composicao_setorial")
        changes = engine.query(f"SELECT * FROM {DATABASE}.vw_mudancas_carteira")
        sessions = engine.query(f"SELECT DISTINCT indice, data_pregao FROM {DATABASE}.{CARTEIRA.name}")
    finally:
        engine.close()
    store: Lake = lake.lake()
    sector_url = store.write_bytes(SECTOR_CHART, charts.sector_weights_png(composition))
    changes_url = store.write_bytes(CHANGES_CHART, charts.composition_changes_png(changes, sessions))
    indices = sorted(composition["indice"].unique())
    shown = {index: str(charts.sector_session(composition, index)[0]) for index in indices}
    yield MaterializeResult(
        asset_key=CHARTS_KEY,
        metadata={
            "sector_weights_png": MetadataValue.path(sector_url),
            "composition_changes_png": MetadataValue.path(changes_url),
            "sector_chart_sessions": MetadataValue.json(shown),
            "sessions": len(sessions),
            "charts": MetadataValue.md(f"- sector weights: `{sector_url}`\n- composition changes: `{changes_url}`"),
        },
    )


def build_views_automation_sensor() -> AutomationConditionSensorDefinition:
    """Evaluates the views' automation conditions: refined data recorded → views and charts refreshed."""
    return AutomationConditionSensorDefinition(
        "views_automation",
        target=AssetSelection.groups(GROUP),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Refreshes the views and charts when the refined tables they read get new partitions.",
    )
