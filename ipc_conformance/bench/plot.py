"""Plots of a bench document (matplotlib, the optional ``bench`` extra), and the HTML section.

``html_section(doc)`` returns ``(title, html_fragment)`` for a report to embed: the plot
as inline SVG (no network, no files) and the figures behind it as a table; without
matplotlib the table alone, with a note saying how to get the plot.
"""

from __future__ import annotations

import html
import io
from typing import Any, Dict, List, Tuple

from .cell import BARE_PIPE, MEMCPY, MEMCPY_FRESH
from .runner import human_size

INSTALL_HINT = "plots need matplotlib: pip install 'ipc-conformance[bench]' (the table and JSON work without it)"
#: One colour map per family, so that a family's lines read as a group.
FAMILY_COLOURS = {"stream": "Blues", "queue": "Greens", "shm": "Oranges", "arrow": "Purples"}
STYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "v", "D", "P"]


class MissingMatplotlib(RuntimeError):
    pass


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingMatplotlib(INSTALL_HINT) from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _points(sizes: Dict[str, Any], key: str) -> Tuple[List[int], List[float]]:
    xs, ys = [], []
    for size, entry in sorted(sizes.items(), key=lambda kv: int(kv[0])):
        if entry.get(key):
            xs.append(int(size))
            ys.append(float(entry[key]["median"]))
    return xs, ys


def figure(doc: Dict[str, Any]) -> Any:
    plt = _pyplot()
    fig, (tp_ax, lat_ax) = plt.subplots(1, 2, figsize=(13, 5.6))
    by_family: Dict[str, int] = {}
    counts: Dict[str, int] = {}
    for row in doc["backends"]:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    for row in doc["backends"]:
        i = by_family.get(row["kind"], 0)
        by_family[row["kind"]] = i + 1
        cmap = plt.get_cmap(FAMILY_COLOURS.get(row["kind"], "Greys"))
        style = {"color": cmap(0.45 + 0.5 * i / max(1, counts[row["kind"]] - 1)), "linestyle": STYLES[i % 4],
                 "marker": MARKERS[i % len(MARKERS)], "markersize": 3, "linewidth": 1.3}
        label = f"{row['name']} ({row['kind']})" + ("" if row["verified"] else " unverified")
        for ax, key, scale in ((tp_ax, "throughput", 1e-9), (lat_ax, "latency", 1e6)):
            xs, ys = _points(row["sizes"], key)
            if xs:
                ax.plot(xs, [y * scale for y in ys], label=label if ax is tp_ax else None, **style)
    base = doc["baselines"]
    lines = {MEMCPY: ("black", "-"), MEMCPY_FRESH: ("grey", "--"), BARE_PIPE: ("black", ":")}
    for name, ax, key, scale in ((MEMCPY, tp_ax, "throughput", 1e-9), (MEMCPY_FRESH, tp_ax, "throughput", 1e-9),
                                 (BARE_PIPE, tp_ax, "throughput", 1e-9), (BARE_PIPE, lat_ax, "latency", 1e6)):
        xs, ys = _points(base.get(name, {}).get("sizes", {}), key)
        if xs:
            colour, linestyle = lines[name]
            ax.plot(xs, [y * scale for y in ys], color=colour, linewidth=2.4, linestyle=linestyle,
                    label=f"baseline: {name}" if ax is tp_ax else None)
    sizes = [int(s) for s in doc["settings"]["sizes"]]
    for ax, title, unit in ((tp_ax, "one-way throughput (higher is better)", "GB/s"),
                            (lat_ax, "round-trip latency (lower is better)", "µs")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([human_size(s).replace(" ", "") for s in sizes], rotation=60, fontsize=7)
        ax.set_xlabel("payload size")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="center right", fontsize=7, frameon=False)
    fig.suptitle(f"ipc-conformance bench, {doc['generated'][:10]}, Python {doc['machine']['python']}, "
                 f"{doc['machine']['cpus']} CPUs (medians of {doc['settings']['repeats']} repeats)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.78, 0.95))
    return fig


def write_plots(doc: Dict[str, Any], prefix: str) -> List[str]:
    """Write ``prefix.png`` and ``prefix.svg``; raises :class:`MissingMatplotlib` without matplotlib."""
    fig = figure(doc)
    plt = _pyplot()
    paths = [prefix + ".png", prefix + ".svg"]
    try:
        fig.savefig(paths[0], dpi=72)
        fig.savefig(paths[1])
    finally:
        plt.close(fig)
    return paths


def svg_text(doc: Dict[str, Any]) -> str:
    fig = figure(doc)
    buf = io.StringIO()
    try:
        fig.savefig(buf, format="svg")
    finally:
        _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML declaration and doctype: it goes inside HTML


def html_section(doc: Dict[str, Any]) -> Tuple[str, str]:
    """``(title, fragment)``: the plot inlined as SVG, and a table of the ratios."""
    title = "Which mechanism for which payload size (ipc-conformance bench)"
    try:
        figure_html = f'<figure class="bench-plot">{svg_text(doc)}</figure>'
    except MissingMatplotlib as exc:
        figure_html = f"<p><em>{html.escape(str(exc))}</em></p>"
    sizes = [str(s) for s in doc["settings"]["sizes"]]
    head = "".join(f"<th>{html.escape(human_size(int(s)))}</th>" for s in sizes)
    rows = []
    for row in doc["backends"]:
        cells = "".join(_html_cell(row["sizes"][s]) for s in sizes)
        mark = "" if row["verified"] else f' <abbr title="{html.escape(row["verification"])}">unverified</abbr>'
        rows.append(f"<tr><th>{html.escape(row['name'])}{mark}</th>{cells}</tr>")
    table = (f'<table class="bench"><caption>one-way throughput × memcpy / round trip as bare pipe ÷ backend '
             f'(higher is better)</caption><tr><th></th>{head}</tr>{"".join(rows)}</table>')
    return title, figure_html + table


def _html_cell(entry: Dict[str, Any]) -> str:
    if entry.get("skipped"):
        return f'<td title="{html.escape(entry["skipped"])}">skip</td>'
    parts = []
    for key in ("throughput_ratio", "latency_ratio"):
        value = entry.get(key)
        parts.append("–" if value is None else f"{value:.2f}")
    return f"<td>{' / '.join(parts)}</td>"
