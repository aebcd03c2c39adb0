"""The capacity document as ``report.html`` (self-contained, plots inline as SVG) and
``report.md``, both from Jinja templates in ``reports/templates``."""

from __future__ import annotations

import io
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

from reports.capacity import PARTITION_READ_UNITS, PARTITION_WRITE_UNITS

TEMPLATES = Path(__file__).with_name("templates")
LOG_SPAN = 50  # an axis whose values span more than this factor is drawn logarithmic
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


def consumption_figure(document: dict) -> Figure:
    """Read and write units per second per table over the run, with the step boundaries."""
    figure = Figure(figsize=(11, 3.6), layout="constrained")
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
    return figure


def scaling_figure(document: dict) -> Figure:
    """The broadcast Scan's bytes against connections (fit), and the projection against N."""
    scaling = document["scaling"]
    figure = Figure(figsize=(11, 3.8), layout="constrained")
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
    return figure


def fanout_figure(document: dict) -> Figure:
    """Fan-out latency and delivery ratio per step (against N), and the time to the last
    recipient against recipients with its fit, the Lambda timeout and the target's N."""
    figure = Figure(figsize=(11, 3.8), layout="constrained")  # room for the twin axis' label
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
    lines, labels = left.get_legend_handles_labels()
    more_lines, more_labels = ratio.get_legend_handles_labels()
    left.legend(lines + more_lines, labels + more_labels, fontsize=7, loc="upper left")
    left.grid(alpha=0.3)
    fanout_fit_axes(right, document["fanout"])
    return figure


def fanout_fit_axes(axis, fanout: dict) -> None:
    """Measured points and their fit; the fit extended past the points (dashed) only when
    it may be extrapolated, to the target's N and, if near, to the break point. Log axes
    when what is drawn spans more than ``LOG_SPAN``."""
    batched = fanout["batches"] is not None
    judged = [(fanout["last_recipient"], "time to the last recipient", "C0")]
    if batched:
        judged.append((fanout["batches"], f"one batch invocation (≤ {fanout['batch_size']})",
                       "C1"))
    timeout, target = fanout["timeout_ms"], fanout["target_users"]
    xs, ys, refused = [float(target)], [timeout], []
    for fitted, label, colour in judged:
        points, line = fitted["points"], fitted["fit"]
        if points:
            axis.scatter([p[0] for p in points], [p[1] for p in points], s=6, alpha=0.4,
                         color=colour, label=label)
            xs += [p[0] for p in points]
            ys += [p[1] for p in points]
        if fitted["refused"] is not None:
            refused.append(fitted["refused"])
        if line is None:
            continue
        low, high = fitted["recipients"]
        a, b = line["intercept"], line["slope"]
        sign = "+" if b >= 0 else "−"
        axis.plot([low, high], [a + b * low, a + b * high], color=colour, linewidth=1.5,
                  label=f"fit: {a:,.1f} {sign} {abs(b):,.3f} ms × recipients "
                        f"(R² {line['r2']:.2f})")
        if fitted["refused"] is not None:
            continue
        end = max(float(fitted["at"]), high)
        reaches = fitted["reaches_timeout_at"]
        if reaches is not None and reaches <= 4 * end:
            end = max(end, reaches * 1.1)
        if end > high:
            axis.plot([high, end], [a + b * high, a + b * end], color=colour, linestyle="--",
                      linewidth=1.2, label="fit extrapolated")
            xs.append(end)
            ys.append(a + b * end)
    per = ", per invocation" if batched else ""
    axis.axhline(timeout, color="C3", linewidth=1,
                 label=f"Lambda timeout ({timeout / 1000:g} s{per})")
    axis.axvline(target, color="grey", linestyle=":", label=f"target N = {target:,}")
    for values, scale in ((xs, axis.set_xscale), (ys, axis.set_yscale)):
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > LOG_SPAN:
            scale("log")
    for reason in refused:  # in the legend, which finds a place clear of the points
        axis.plot([], [], linestyle="none", label=textwrap.fill(f"not extrapolated: {reason}", 60))
    axis.set_xlabel("recipients")
    axis.set_ylabel("ms")
    axis.set_title(f"Time to the last recipient ({fanout['strategy']})")
    axis.legend(fontsize=7, loc="best")
    axis.grid(alpha=0.3, which="both")


FIGURES = {"consumption": consumption_figure, "scaling": scaling_figure, "fanout": fanout_figure}


def render(document: dict, directory: Path) -> list[Path]:
    """Write report.html and report.md into ``directory``; returns their paths."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    context = {"d": document, "generated": generated,
               "started": datetime.fromtimestamp(document["run"]["started_at"], UTC)
               .strftime("%Y-%m-%d %H:%M:%S UTC")}
    html = _environment.get_template("report.html.j2").render(
        **context, plots={name: _figure_svg(figure(document)) for name, figure in FIGURES.items()})
    markdown = _environment.get_template("report.md.j2").render(**context)
    paths = [directory / "report.html", directory / "report.md"]
    for path, text in zip(paths, (html, markdown)):
        path.write_text(text)
    return paths
