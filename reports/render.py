"""The capacity document as ``report.html`` (self-contained, plots inline as SVG) and
``report.md``, both from Jinja templates in ``reports/templates``."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

from reports.capacity import PARTITION_READ_UNITS, PARTITION_WRITE_UNITS

TEMPLATES = Path(__file__).with_name("templates")
_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)


def _figure_svg(figure: Figure) -> str:
    """The figure as inline SVG (matplotlib's Figure API: no pyplot state, no display)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def consumption_plot(document: dict) -> str:
    """Read and write units per second per table over the run, with the step boundaries."""
    figure = Figure(figsize=(11, 3.6))
    axes = figure.subplots(1, 2, sharex=True)
    started = document["run"]["started_at"]
    for table, series in document["per_second"].items():
        seconds = [series["start"] - started + i for i in range(len(series["read"]))]
        for axis, kind in zip(axes, ("read", "write")):
            axis.plot(seconds, series[kind], label=table, linewidth=1.2)
    steps = document["by_users"]
    for axis, kind, unit in zip(axes, ("read", "write"), ("RCU", "WCU")):
        for boundary in document["step_starts_s"][1:]:
            axis.axvline(boundary, color="grey", linestyle=":", linewidth=0.8)
        axis.set_title(f"{unit} consumed per second ({len(steps)} steps)")
        axis.set_xlabel("seconds since the load started")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _figure_svg(figure)


def scaling_plot(document: dict) -> str:
    """The broadcast Scan's bytes against connections (fit), and the projection against N."""
    scaling = document["scaling"]
    figure = Figure(figsize=(11, 3.8))
    left, right = figure.subplots(1, 2)
    points = scaling["scan"]["points"]
    if points:
        left.scatter([p[0] for p in points], [p[1] for p in points], s=6, alpha=0.5,
                     label="measured Scans")
        top = max(p[0] for p in points)
        left.plot([0, top], [scaling["scan"]["base_bytes"],
                             scaling["scan"]["base_bytes"] + scaling["scan"]["row_bytes"] * top],
                  color="C3", label=f"fit: {scaling['scan']['row_bytes']:.1f} bytes per connection")
        left.legend(fontsize=8)
    left.set_xlabel("connections returned by the Scan")
    left.set_ylabel("bytes read")
    left.set_title("Broadcast Scan size")
    left.grid(alpha=0.3)
    users = [p["users"] for p in scaling["projection"]]
    for table in document["tables"].values():
        right.plot(users, [max(p["tables"][table]["read"], 1e-3) for p in scaling["projection"]],
                   label=f"{table} RCU/s")
        right.plot(users, [max(p["tables"][table]["write"], 1e-3) for p in scaling["projection"]],
                   linestyle="--", label=f"{table} WCU/s")
    right.axhline(PARTITION_READ_UNITS, color="black", linewidth=0.8)
    right.axhline(PARTITION_WRITE_UNITS, color="black", linewidth=0.8, linestyle="--")
    right.axvline(document["target"]["users"], color="C3", linestyle=":", label="target")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("connected users N")
    right.set_title("Mean capacity per second against N (partition limits in black)")
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    right.grid(alpha=0.3, which="both")
    return _figure_svg(figure)


def fanout_plot(document: dict) -> str:
    """Fan-out latency and delivery ratio per step (against N), and fan-out duration."""
    figure = Figure(figsize=(11, 3.6))
    left, right = figure.subplots(1, 2)
    steps = document["by_users"]
    users = [s["users"] for s in steps]
    for name, key in (("per recipient", "fanout_ms"), ("last recipient", "last_recipient_ms")):
        for percentile, style in (("p50", "-o"), ("p95", "--o")):
            left.plot(users, [s[key][percentile] for s in steps], style, markersize=4,
                      label=f"{name} {percentile}")
    ratio = left.twinx()
    ratio.plot(users, [s["delivery_ratio"] for s in steps], ":s", color="black",
               label="delivery ratio")
    ratio.set_ylim(0, 1.05)
    ratio.set_ylabel("delivery ratio")
    left.set_xlabel("connected users N")
    left.set_ylabel("ms")
    left.set_title("Fan-out latency and delivery against N")
    left.legend(fontsize=7, loc="upper left")
    left.grid(alpha=0.3)
    points = document["scaling"]["fanout_points"]
    if points:
        right.scatter([p[0] for p in points], [p[1] for p in points], s=6, alpha=0.5)
    right.axhline(document["break_points"]["lambda_timeout_ms"], color="C3",
                  label="Lambda timeout")
    right.set_xlabel("recipients")
    right.set_ylabel("fan-out duration (ms)")
    right.set_title("Broadcast duration inside the handler")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    return _figure_svg(figure)


def render(document: dict, directory: Path) -> list[Path]:
    """Write report.html and report.md into ``directory``; returns their paths."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    context = {"d": document, "generated": generated,
               "started": datetime.fromtimestamp(document["run"]["started_at"], UTC)
               .strftime("%Y-%m-%d %H:%M:%S UTC")}
    html = _environment.get_template("report.html.j2").render(
        **context, plots={"consumption": consumption_plot(document),
                          "scaling": scaling_plot(document), "fanout": fanout_plot(document)})
    markdown = _environment.get_template("report.md.j2").render(**context)
    paths = [directory / "report.html", directory / "report.md"]
    for path, text in zip(paths, (html, markdown)):
        path.write_text(text)
    return paths
