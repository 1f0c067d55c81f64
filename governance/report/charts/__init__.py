"""Report charts: a registry from audit name to chart builders, drawn to inline SVG.

Each builder is ``build(results) -> list[ChartSpec]`` and raises :class:`NoData` when the
results lack what it draws; the chart is then listed as omitted with that reason, so a report
is always complete about what it could not show. A builder whose chart does not apply to the
kind of model audited (heatmaps of a tabular model, feature bars of an image model) returns an
empty list: nothing is shown, and nothing is reported missing. Builders are registered by import path, so
listing them imports none of them.

Charts are drawn by matplotlib (:mod:`governance.report.charts._svg`), imported only when a
report that shows pictures renders. Chart ids are made unique within a report: a chart's id is
used for the ``<figure>`` anchor and inside its SVG, and two attributes whose names differ only
in characters an id cannot hold (``a*b`` and ``a-b``) must not collide.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from governance.report.charts._data import NoData
from governance.report.charts.base import Chart, ChartSpec

if TYPE_CHECKING:
    from governance.results import Results

__all__ = [
    "Chart",
    "ChartSpec",
    "NoData",
    "build_charts",
    "chart_builders",
    "draw_all",
    "register_chart",
    "warm_up",
]

ERR_DUPLICATE = "chart {name!r} is already registered"
#: Fewest charts worth a helper process (forking and sending back cost about one chart).
_SPLIT_FROM = 4

Builder = Callable[["Results"], list[ChartSpec]]

# name -> (audit the chart belongs to, builder or its "module:function" path); report order.
_REGISTRY: dict[str, tuple[str, str | Builder]] = {
    "group_representation": ("data_quality", "governance.report.charts.data:group_representation"),
    "confusion_matrix": ("performance", "governance.report.charts.performance:confusion_matrix"),
    "group_rates": ("fairness", "governance.report.charts.fairness:group_rates"),
    "fairness_trend": ("fairness", "governance.report.charts.costs:fairness_trend"),
    "top_attributions": ("attribution", "governance.report.charts.attribution:top_attributions"),
    "group_attributions": ("attribution", "governance.report.charts.attribution:group_attributions"),
    "attribution_heatmaps": ("attribution", "governance.report.charts.heatmaps:attribution_heatmaps"),
    "attribution_heatmap_examples": ("attribution", "governance.report.charts.heatmaps:heatmap_examples"),
    "robust_accuracy": ("robustness", "governance.report.charts.robustness:robust_accuracy"),
    "epsilon_per_epoch": ("privacy", "governance.report.charts.privacy:epsilon_per_epoch"),
    "membership_roc": ("privacy", "governance.report.charts.privacy:membership_roc"),
    "privacy_cost_by_group": ("privacy_cost", "governance.report.charts.costs:privacy_cost_by_group"),
    "compression_tradeoff": ("compression", "governance.report.charts.costs:compression_tradeoff"),
    "compression_by_group": ("compression", "governance.report.charts.costs:compression_groups"),
    "mitigation_frontier": ("mitigation", "governance.report.charts.costs:mitigation_frontier"),
}

#: Titles used when a builder could not even describe its chart (no data at all).
_FALLBACK_TITLES: dict[str, str] = {
    "group_representation": "Group representation in the data",
    "confusion_matrix": "Confusion matrix",
    "group_rates": "Selection rate, TPR and FPR per group",
    "fairness_trend": "Demographic parity ratio per monitoring window",
    "top_attributions": "Top feature attributions",
    "group_attributions": "Top feature attributions per group",
    "attribution_heatmaps": "Attribution heatmaps per predicted class",
    "attribution_heatmap_examples": "Attribution heatmaps of single images",
    "robust_accuracy": "Robust accuracy against ε",
    "epsilon_per_epoch": "Privacy budget ε spent per epoch",
    "membership_roc": "Membership-inference ROC",
    "privacy_cost_by_group": "What differential privacy cost each group",
    "compression_tradeoff": "Size and latency against accuracy",
    "compression_by_group": "What compression costs each group",
    "mitigation_frontier": "The frontier of mitigation settings",
}


def register_chart(name: str, audit: str, builder: str | Builder, *, title: str | None = None) -> None:
    """Add a chart to the reports of ``audit``; ``builder`` is a callable or its ``module:function`` path."""
    if name in _REGISTRY:
        raise ValueError(ERR_DUPLICATE.format(name=name))
    _REGISTRY[name] = (audit, builder)
    if title:
        _FALLBACK_TITLES[name] = title


def chart_builders() -> dict[str, str]:
    """Chart name → the audit whose section shows it."""
    return {name: audit for name, (audit, _) in _REGISTRY.items()}


def _resolve(target: str | Builder) -> Builder:
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        resolved: Builder = getattr(importlib.import_module(module_name), attr)
        return resolved
    return target


def build_charts(results: Results, *, draw: bool = True) -> dict[str, list[Chart]]:
    """Every registered chart for ``results``, grouped by audit name.

    Parameters
    ----------
    results
        The audit results the charts are drawn from.
    draw
        Render SVG (HTML, PDF). Text formats pass False: they show the words, not the picture.
    """
    out: dict[str, list[Chart]] = {}
    planned: list[tuple[Chart, ChartSpec | None]] = []
    taken: set[str] = set()
    for name, (audit, target) in _REGISTRY.items():
        if audit not in results.sections:
            continue  # an audit the run did not list has no section to show a chart (or a note) in
        out.setdefault(audit, [])
        planned.extend(_plan_one(name, audit, target, results, taken=taken))
    to_draw = [(chart, spec) for chart, spec in planned if spec is not None]
    drawn = draw_all(to_draw) if draw else {}
    for chart, _ in planned:
        out[chart.audit].append(drawn.get(chart.id, chart))
    return out


def unique_id(name: str, taken: set[str]) -> str:
    """``name`` as a safe id (see :func:`~governance.report.charts._svg.safe_id`) not yet in ``taken``; adds it.

    A name that had to change, or that is already taken, gets ``-2``, ``-3`` … appended.

    Examples
    --------
    >>> taken: set[str] = set()
    >>> [unique_id(n, taken) for n in ("rates-a-b", "rates-a*b", "rates-a*b")]
    ['rates-a-b', 'rates-a-b-2', 'rates-a-b-3']
    """
    from governance.report.charts._svg import safe_id

    base = safe_id(name)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


def _plan_one(
    name: str, audit: str, target: str | Builder, results: Results, *, taken: set[str]
) -> list[tuple[Chart, ChartSpec | None]]:
    """The builder's charts, each with its unique id and words, and the spec to draw it (None: omitted)."""
    title = _FALLBACK_TITLES.get(name, name)
    try:
        specs = _resolve(target)(results)
    except NoData as exc:
        return [(Chart(id=unique_id(name, taken), audit=audit, title=title, note=f"Not shown: {exc}."), None)]
    return [
        (
            Chart(
                id=unique_id(spec.id, taken),
                audit=audit,
                title=spec.title,
                caption=spec.caption,
                alt=spec.alt,
                width=spec.size[0],
                height=spec.size[1],
            ),
            spec,
        )
        for spec in specs
    ]


def draw_all(planned: Sequence[tuple[Chart, ChartSpec]]) -> dict[str, Chart]:
    """Each chart (by id) with its SVG, or with a note saying why it could not be drawn.

    With a second CPU, a forked helper draws every other chart while this process draws the
    rest (:mod:`governance.report.charts._helper`); a chart the helper did not deliver is drawn
    here, so the SVG and the errors are those of drawing everything here.
    """
    from governance.report.charts._helper import DrawingHelper

    helper = None
    if len(planned) >= _SPLIT_FROM:
        warm_up()  # matplotlib and every builder, imported before the fork: the helper inherits them
        helper = DrawingHelper.start(planned[1::2], _draw)
    mine = planned[0::2] if helper is not None else planned
    drawn = {chart.id: _drawn(chart, spec) for chart, spec in mine}
    if helper is not None:
        theirs = helper.collect()
        for chart, spec in planned[1::2]:
            svg = theirs.get(chart.id)
            drawn[chart.id] = replace(chart, svg=svg) if svg is not None else _drawn(chart, spec)
    return drawn


def _drawn(chart: Chart, spec: ChartSpec) -> Chart:
    try:
        return replace(chart, svg=_draw(spec, chart.id))
    except Exception as exc:  # a broken chart must not cost the reviewer the whole report
        return replace(chart, note=f"Could not be drawn ({exc.__class__.__name__}: {exc}).")


def _draw(spec: ChartSpec, chart_id: str) -> str:
    from governance.report.charts._svg import draw

    return draw(spec.plot, spec.size, chart_id=chart_id, title=spec.title, desc=spec.alt)


def warm_up() -> None:
    """Import every chart builder, matplotlib and its SVG backend (about half a second).

    A report worker calls this before the results exist (see
    :class:`governance.report.render.ReportWorker`).
    """
    for _, target in _REGISTRY.values():
        _resolve(target)
    import matplotlib.backends.backend_svg
    import matplotlib.figure  # noqa: F401
