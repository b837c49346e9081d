"""Charts of a run as inline SVG, drawn with matplotlib's Agg canvas (no pyplot, no display).

The charts carry numbers and units only; every word is in the surrounding html, so one
drawing serves every report language.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from faultlab.analysis import Analysis, Window

__all__ = ["Chart", "render_charts"]


@dataclass(frozen=True)
class Chart:
    """One chart: the catalogue key of its title and the ``<svg>`` element."""

    key: str
    title_key: str
    svg: str


_SERIES: list[tuple[str, str, Callable[[Window], float | None]]] = [
    ("success_rate", "chart.success_rate", lambda w: w.success_rate),
    ("p99_latency", "chart.p99", lambda w: w.p99_latency_s),
    ("throughput", "chart.throughput", lambda w: w.throughput_rps),
    ("completion_delay", "chart.exec", lambda w: w.completion_delay_p99_s),
]


def _draw(analysis: Analysis, key: str, value_of: Callable[[Window], float | None]) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    windows = analysis.windows
    xs = [w.end for w in windows]
    ys = [value_of(w) for w in windows]
    fig = Figure(figsize=(9.0, 2.4), dpi=96)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(xs, [float("nan") if y is None else y for y in ys], color="#1f4e79", linewidth=1.2)
    last = analysis.last_t if analysis.last_t is not None else (xs[-1] if xs else 0.0)
    for fault in analysis.faults:
        if fault.active_t is not None:
            end = fault.reverted_t if fault.reverted_t is not None else last
            ax.axvspan(fault.active_t, end, color="#d62728", alpha=0.12, linewidth=0)
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
    ax.set_xlim(0, max(last, 1.0))
    ax.set_xlabel("t (s)")
    ax.grid(True, linewidth=0.3, alpha=0.5)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def render_charts(analysis: Analysis) -> list[Chart]:
    """Success rate, p99 latency, throughput and (when recorded) completion delay over time.

    Fault windows are shaded; injection, impact start, detection and the recovery point are
    marked with lines.
    """
    import matplotlib

    charts: list[Chart] = []
    if not analysis.windows:
        return charts
    with matplotlib.rc_context({"svg.hashsalt": analysis.run_id, "svg.fonttype": "none",
                                "font.size": 8}):
        for key, title_key, value_of in _SERIES:
            if key == "completion_delay" and not analysis.completion_delay.recorded:
                continue
            svg = _draw(analysis, key, value_of)
            svg = re.sub(r"<svg ", f'<svg role="img" data-chart="{key}" ', svg, count=1)
            charts.append(Chart(key=key, title_key=title_key, svg=svg))
    return charts
