"""Charts of a run as inline SVG, drawn with matplotlib's Agg canvas (no pyplot, no display).

Each point is one window's value plotted at the window's start, held until the next window
starts: the tables place a window by its start (the recovery point is the start of the
first window of the healthy run), so the curve crosses into health exactly at the recovery
line. Fault spans are shaded; the jobs' runs are a band along the top, their deadlines a
dash-dot line named in the report's language; on the latency chart, windows whose failures
were answered fast are hatched, since their low p99 does not mean health. Every other word
is in the surrounding html.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faultlab.analysis import Analysis, Window

__all__ = ["Chart", "render_charts", "chart_points", "fast_error_windows", "fast_error_spans"]

_JOB = "#6a3d9a"


@dataclass(frozen=True)
class Chart:
    """One chart: the catalogue keys of its title and of its note (empty: none), and the ``<svg>``."""

    key: str
    title_key: str
    svg: str
    note_key: str = ""


_SERIES: list[tuple[str, str, Callable[[Window], float | None]]] = [
    ("success_rate", "chart.success_rate", lambda w: w.success_rate),
    ("p99_latency", "chart.p99", lambda w: w.p99_latency_s),
    ("throughput", "chart.throughput", lambda w: w.throughput_rps),
    ("completion_delay", "chart.exec", lambda w: w.completion_delay_p99_s),
]


def chart_points(analysis: Analysis, value_of: Callable[[Window], float | None]) -> tuple[list[float], list[float]]:
    """The points a chart draws: ``x`` is each window's start (where the tables place it),
    ``y`` its value (NaN where it has none, so the line breaks there)."""
    xs = [w.start for w in analysis.windows]
    ys = [float("nan") if (y := value_of(w)) is None else float(y) for w in analysis.windows]
    return xs, ys


def _latency_bound(analysis: Analysis) -> float | None:
    bound = analysis.steady_state.get("p99_latency_max_s")
    if bound is not None:
        return float(bound)
    baseline = analysis.baseline
    return baseline.latency.p99_s if baseline is not None else None


def fast_error_windows(analysis: Analysis) -> list[Window]:
    """Windows that failed on their success rate while their p99 latency looked healthy (within
    the steady-state bound, or the baseline's p99 when there is none): their failures were
    answered fast, which pulls the latency down without meaning health."""
    bound = _latency_bound(analysis)
    floor = analysis.steady_state.get("success_rate_min")
    if bound is None:
        return []
    return [w for w in analysis.windows
            if not w.healthy and w.samples and w.ok < w.samples and w.p99_latency_s is not None
            and w.p99_latency_s <= bound and (floor is None or (w.success_rate or 0.0) < floor)]


def fast_error_spans(analysis: Analysis) -> list[tuple[float, float]]:
    """:func:`fast_error_windows` as time spans on the chart's axis (each window from its start
    to the next window's start), neighbours merged."""
    spans: list[tuple[float, float]] = []
    for w in fast_error_windows(analysis):
        end = w.start + analysis.step_s
        if spans and w.start <= spans[-1][1] + analysis.step_s * 1e-3:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((w.start, end))
    return spans


def _deadline_text(raw: object, lang: str) -> str:
    from faultlab.model.types import text_of

    return text_of(raw, lang) or ""


def _draw_jobs(ax: Any, analysis: Analysis, lang: str, last: float) -> None:
    for job in analysis.jobs:
        if job.started_t is None:
            continue
        end = job.finished_t if job.finished_t is not None else last
        ax.axvspan(job.started_t, end, ymin=0.92, ymax=1.0, color=_JOB, alpha=0.3, linewidth=0)
        ax.text(job.started_t, 0.96, f" {job.job}", transform=ax.get_xaxis_transform(),
                va="center", ha="left", fontsize=7, color="#2d1846")
        if job.window_s is not None:
            ax.axvline(job.started_t + job.window_s, color=_JOB, linestyle=":", linewidth=1.0)
        if job.deadline_t is not None:
            ax.axvline(job.deadline_t, color=_JOB, linestyle="-.", linewidth=1.3)
            name = _deadline_text(job.deadline_name, lang)
            if name:
                ax.text(job.deadline_t, 0.88, f"{name} ", transform=ax.get_xaxis_transform(),
                        va="top", ha="right", fontsize=7, color=_JOB)


def _draw(analysis: Analysis, key: str, value_of: Callable[[Window], float | None], lang: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xs, ys = chart_points(analysis, value_of)
    fig = Figure(figsize=(9.0, 2.4), dpi=96)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, ys, color="#1f4e79", linewidth=1.2, drawstyle="steps-post")
    last = analysis.last_t if analysis.last_t is not None else (xs[-1] if xs else 0.0)
    for fault in analysis.faults:
        if fault.active_t is not None:
            end = fault.reverted_t if fault.reverted_t is not None else last
            ax.axvspan(fault.active_t, end, color="#d62728", alpha=0.12, linewidth=0)
    if key == "p99_latency":
        for start, end in fast_error_spans(analysis):
            ax.axvspan(start, end, facecolor="none", edgecolor="#8a4b00", hatch="////", linewidth=0)
    if analysis.t_inject is not None:
        ax.axvline(analysis.t_inject, color="#d62728", linewidth=1.2)
    impact, detection, recovery = (analysis.impact_start.value, analysis.detection.value,
                                   analysis.recovery_point.value)
    if impact is not None:
        ax.axvline(impact, color="#7f7f7f", linestyle=":", linewidth=1.2)
    if detection is not None and analysis.t_inject is not None:
        ax.axvline(analysis.t_inject + detection, color="#ff7f0e", linestyle="--", linewidth=1.2)
    if recovery is not None:
        ax.axvline(recovery, color="#2ca02c", linestyle="--", linewidth=1.4)
    steady = analysis.steady_state
    if key == "success_rate" and steady.get("success_rate_min") is not None:
        ax.axhline(steady["success_rate_min"], color="#1f77b4", linestyle=":", linewidth=1.0)
        ax.set_ylim(-0.02, 1.02)
    if key == "p99_latency" and steady.get("p99_latency_max_s") is not None:
        ax.axhline(steady["p99_latency_max_s"], color="#1f77b4", linestyle=":", linewidth=1.0)
    _draw_jobs(ax, analysis, lang, last)
    ax.set_xlim(0, max(last, 1.0))
    ax.set_xlabel("t (s)")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    with warnings.catch_warnings():
        # A deadline's name in Japanese has no glyphs in matplotlib's font; the SVG keeps it
        # as text (svg.fonttype none) and the browser draws it with its own fonts.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def render_charts(analysis: Analysis, lang: str = "en") -> list[Chart]:
    """Success rate, p99 latency, throughput and (when recorded) completion delay over time,
    for a report in ``lang`` (the deadlines' names are in it).

    Fault spans are shaded; injection, impact start, detection and the recovery point are
    marked with lines; jobs and their deadlines are drawn on every chart of a run with jobs.
    """
    import matplotlib

    charts: list[Chart] = []
    if not analysis.windows:
        return charts
    fast_errors = bool(fast_error_windows(analysis))
    with matplotlib.rc_context({"svg.hashsalt": analysis.run_id, "svg.fonttype": "none",
                                "font.size": 8}):
        for key, title_key, value_of in _SERIES:
            if key == "completion_delay" and not analysis.completion_delay.recorded:
                continue
            svg = _draw(analysis, key, value_of, lang)
            svg = re.sub(r"<svg ", f'<svg role="img" data-chart="{key}" ', svg, count=1)
            note = "chart.fast_errors" if key == "p99_latency" and fast_errors else ""
            charts.append(Chart(key=key, title_key=title_key, svg=svg, note_key=note))
    return charts
