"""Text every report format shares: the settings line, the examples line, an extra section.

Below :mod:`.report` (which dispatches to the writers) and the HTML and Markdown writers,
so that none of them imports another's module to get them.
"""

from __future__ import annotations

from typing import Any, Mapping, Tuple

#: An extra section of the HTML report: (title, HTML fragment); see :func:`.report_html.to_html`.
Section = Tuple[str, str]


def settings_text(data: Mapping[str, Any]) -> str:
    s = data["settings"]
    return (f"profile {s.get('profile')} (up to {s.get('max_examples')} examples per check"
            f"{', derandomized' if s.get('derandomize') else ''}), deadline {s.get('deadline_s')} s, "
            f"{s.get('replays')} replays of a failing example")


def examples_text(data: Mapping[str, Any]) -> str:
    """How many examples the judged verdicts rest on, e.g. "verdicts rest on 8-10 examples per placement"."""
    counts = [int(d.get("examples") or 0) for r in data["results"] for d in r["placements"].values()
              if d["verdict"] in ("pass", "fail", "flaky", "error")]
    if not counts or not max(counts):
        return "no verdict rests on an example"
    low, high = min(counts), max(counts)
    return f"verdicts rest on {low if low == high else f'{low}-{high}'} examples per placement"
