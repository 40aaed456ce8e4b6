"""What a bench run produces: the statistics, the JSON document, the terminal table.

Ratios are "higher is better" and relative to the machine's own limits measured in the
same run, so that they compare across machines:

* throughput ratio = the backend's median one-way throughput / the median memcpy
  bandwidth at the same size (a copy within one process into a buffer already touched);
  each repeat's figure is the fastest of its batches (``cell.py``), the median is over repeats;
* latency ratio = the median bare ``os.pipe`` round trip / the backend's median round
  trip at the same size (1.0: as fast as two processes ping-ponging on a raw pipe).

JSON schema (``schema: "ipc-conformance-bench/1"``; as JSON Schema in ``ipc_conformance/bench.schema.json``,
checked by ``python -m ipc_conformance.schema bench.json``)::

    {"schema", "generated": ISO-8601, "command": [str], "machine": {...}, "settings": {...},
     "guard": {"ran": bool, "profile": str | null, "seconds": float | null, "note": str,
               and when it ran: "placements": str, "exit_code": int, "command": [str]},
     "baselines": {"memcpy" | "memcpy-fresh" | "bare-pipe": {"sizes": {"<bytes>": {"throughput": Stat | null,
                                                                 "latency": Stat | null}}}},
     "backends": [{"name", "kind", "wiring", "verified": bool, "verification": str,
                   "sizes": {"<bytes>": {"throughput": Stat | null, "latency": Stat | null,
                                         "throughput_ratio": float | null,
                                         "latency_ratio": float | null,
                                         "skipped": str | null, "errors": [str]}}}]}
    Stat = {"median", "q1", "q3", "min", "max": float, "n": int}
    (throughput in bytes per second, latency in seconds per round trip)
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import textwrap
from typing import Any, Dict, List, Optional, Sequence

from .cell import BARE_PIPE, BASELINES, MEMCPY
from .runner import Series, Settings, human_size

SCHEMA = "ipc-conformance-bench/1"


def stat(samples: Sequence[float]) -> Optional[Dict[str, Any]]:
    if not samples:
        return None
    xs = sorted(samples)

    def q(f: float) -> float:  # linear interpolation between closest ranks
        pos = f * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return {"median": q(0.5), "q1": q(0.25), "q3": q(0.75), "min": xs[0], "max": xs[-1], "n": len(xs)}


def _ratio(num: Optional[Dict[str, Any]], den: Optional[Dict[str, Any]]) -> Optional[float]:
    if not num or not den or den["median"] <= 0 or num["median"] <= 0:
        return None
    return float(num["median"] / den["median"])


def document(series: Dict[str, Dict[int, Series]], backends: Sequence[Any], verdicts: Dict[str, str],
             settings: Settings, guard: Dict[str, Any], argv: Sequence[str]) -> Dict[str, Any]:
    base = {name: {str(size): {"throughput": stat(s.throughput), "latency": stat(s.latency)}
                   for size, s in series[name].items()} for name in BASELINES}
    rows = []
    for b in backends:
        sizes: Dict[str, Any] = {}
        for size, s in series[b.name].items():
            tp, lat = stat(s.throughput), stat(s.latency)
            ref = base[MEMCPY][str(size)]["throughput"]
            pipe = base[BARE_PIPE][str(size)]["latency"]
            sizes[str(size)] = {"throughput": tp, "latency": lat, "throughput_ratio": _ratio(tp, ref),
                                "latency_ratio": _ratio(pipe, lat), "skipped": s.skipped, "errors": s.errors}
        verdict = verdicts.get(b.name, "unverified: not checked")
        rows.append({"name": b.name, "kind": b.kind, "wiring": b.wiring, "verified": verdict == "verified",
                     "verification": verdict, "sizes": sizes})
    return {
        "schema": SCHEMA,
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": list(argv),
        "machine": machine(settings),
        "settings": {"sizes": settings.sizes, "repeats": settings.repeats, "target_s": settings.target_s,
                     "quick": settings.quick, "deadline_s": settings.deadline_s},
        "guard": {k: v for k, v in guard.items() if k != "report"},  # the conformance report goes to --report
        "baselines": {name: {"sizes": sizes} for name, sizes in base.items()},
        "backends": rows,
    }


def machine(settings: Settings) -> Dict[str, Any]:
    from ipc_specs.limits import probe

    limits = probe()
    return {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
            "pinned": settings.cpus or None, "pipe_capacity": limits.get("pipe_capacity"),
            "shm_free_bytes": _shm_free()}


def _shm_free() -> int:
    from .runner import shm_free

    return shm_free()


# --- the terminal table -------------------------------------------------------------------------
NAME_W = 22
COL_W = 8


def _si(x: float, unit: str) -> str:
    """At most seven characters: ``22.8G`` (bytes/s), ``23.6us``, ``1.07ms``."""
    scales = (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0)) if unit != "s" else (
        ("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))
    for prefix, scale in scales:
        if x >= scale:
            return f"{x / scale:.3g}{prefix}"
    return f"{x:.2g}"


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:.3g}"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"  # 0.0031, not 0.00


def _cell(entry: Dict[str, Any], key: str) -> str:
    if entry.get("skipped"):
        return "skip"
    value = entry.get(key)
    if value is None and entry.get("errors"):
        return "ERR"
    return _fmt(value)


def row_name(name: str, verified: bool) -> str:
    """A backend's name as the table's first column: at most ``NAME_W - 1`` characters (one
    space before the figures), the name cut with an ellipsis so that the " ?" mark survives."""
    mark = "" if verified else " ?"
    room = NAME_W - 1 - len(mark)
    if len(name) > room:
        name = name[:room - 1] + "…"
    return name + mark


def table(doc: Dict[str, Any], width: int = 80) -> str:
    sizes = [int(s) for s in doc["settings"]["sizes"]]
    per_block = max(1, (min(width, 80) - NAME_W) // COL_W)
    out: List[str] = []
    metrics = (("throughput", "one-way throughput: memcpy in bytes/s, backends as x memcpy", MEMCPY, "B/s"),
               ("latency", "round trip: bare os.pipe per round trip, backends as bare pipe / backend",
                BARE_PIPE, "s"))
    for key, title, base, unit in metrics:
        for start in range(0, len(sizes), per_block):
            block = sizes[start:start + per_block]
            out.append("")
            out.append(title if start == 0 else title.split(":")[0] + " (continued)")
            out.append("".ljust(NAME_W) + "".join(human_size(s).rjust(COL_W) for s in block))
            ref = doc["baselines"][base]["sizes"]
            cells = [ref[str(s)][key] for s in block]
            out.append(base.ljust(NAME_W) + "".join(
                (_si(c["median"], unit) if c else "-")[:COL_W - 1].rjust(COL_W) for c in cells))
            if key == "throughput":  # the other baselines, as ratios like the backends
                for other in BASELINES:
                    if other == MEMCPY:
                        continue
                    mine = doc["baselines"][other]["sizes"]
                    out.append(f"({other})".ljust(NAME_W) + "".join(
                        _fmt(_ratio(mine[str(s)]["throughput"], ref[str(s)]["throughput"])).rjust(COL_W)
                        for s in block))
            for row in doc["backends"]:
                out.append(row_name(row["name"], row["verified"]).ljust(NAME_W) + "".join(
                    _cell(row["sizes"][str(s)], key + "_ratio")[:COL_W - 1].rjust(COL_W) for s in block))
    legend = "higher is better; skip: size not possible here, ERR: the cell failed (the JSON says why)."
    if any(not row["verified"] for row in doc["backends"]):
        legend += " ? unverified: " + doc["guard"].get("note", "not checked by the conformance suite")
    return "\n".join(out + [""] + textwrap.wrap(legend, 79))
