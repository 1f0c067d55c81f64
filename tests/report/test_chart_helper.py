"""Charts drawn by two processes: the same charts (SVG, notes) as drawn by one."""

from __future__ import annotations

import os
from typing import Any

import pytest

from governance.report import charts
from governance.report._fork import cpus
from governance.report.charts import _helper, build_charts
from governance.results import Results


@pytest.fixture
def helper_replies(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """What each helper delivered (SVG by chart id)."""
    if cpus() < 2:
        pytest.skip("one CPU: every chart is drawn in this process")
    seen: list[dict[str, str]] = []
    original = _helper.DrawingHelper.collect

    def spy(self: _helper.DrawingHelper) -> dict[str, str]:
        got = original(self)
        seen.append(got)
        return got

    monkeypatch.setattr(_helper.DrawingHelper, "collect", spy)
    return seen


def _one_process(results: Results, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[charts.Chart]]:
    with monkeypatch.context() as m:
        m.setattr(charts, "_SPLIT_FROM", 10**9)
        return build_charts(results)


def test_two_processes_draw_the_charts_one_process_draws(
    results: Results, helper_replies: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    both = build_charts(results)
    drawn = [c for group in both.values() for c in group if c.svg]
    assert len(drawn) >= 2 * charts._SPLIT_FROM
    # The helper drew every other chart.
    assert len(helper_replies) == 1 and len(helper_replies[0]) == len(drawn) // 2
    assert both == _one_process(results, monkeypatch)


def test_a_chart_the_helper_cannot_draw_is_drawn_here_with_its_error(
    results: Results, helper_replies: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = charts._draw
    ids = [c.id for group in build_charts(results, draw=False).values() for c in group if not c.note]
    theirs = ids[1]  # the helper's first chart

    def broken(spec: Any, chart_id: str) -> str:
        if chart_id == theirs:
            raise RuntimeError("no ink")
        return real(spec, chart_id)

    monkeypatch.setattr(charts, "_draw", broken)
    both = build_charts(results)
    assert theirs not in helper_replies[0]
    failed = [c for group in both.values() for c in group if c.id == theirs]
    assert failed[0].note == "Could not be drawn (RuntimeError: no ink)." and failed[0].svg is None
    assert both == _one_process(results, monkeypatch)


def test_a_helper_that_dies_leaves_every_chart_to_this_process(
    results: Results, helper_replies: list[dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(*args: object) -> None:
        os._exit(3)

    monkeypatch.setattr(_helper, "_draw_these", die)
    both = build_charts(results)
    assert helper_replies == [{}]
    assert both == _one_process(results, monkeypatch)


def _wait_for_close(conn: Any) -> None:
    conn.poll(30)  # until the test says so


def _done(helper: Any) -> None:
    from governance.report import _fork

    helper[1].send(None)
    _fork.stop(*helper)


def test_a_helper_is_forked_only_while_it_has_a_cpu_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from governance.report import _fork

    if cpus() < 2:
        pytest.skip("one CPU: nothing is forked")
    monkeypatch.setattr(_fork, "cpus", lambda: 2)
    first = _fork.fork(_wait_for_close, name="test-first")
    assert first is not None
    try:
        # This process keeps one CPU and the first helper the other: a second would take turns.
        assert _fork.fork(_wait_for_close, name="test-second") is None
        monkeypatch.setattr(_fork, "cpus", lambda: 3)
        third = _fork.fork(_wait_for_close, name="test-third")
        assert third is not None
        _done(third)
    finally:
        _done(first)
    monkeypatch.setattr(_fork, "cpus", lambda: 2)
    again = _fork.fork(_wait_for_close, name="test-again")  # the first is done: its CPU is free
    assert again is not None
    _done(again)
