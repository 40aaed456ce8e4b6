"""The HTML report's appendix: the catalogue entries of the invariants the report mentions.

An invariant id in the page links to ``#<id>``, an entry of this appendix, so the links
work wherever the page is opened: offline, mailed, or written by an installed wheel that
has no ``docs/INVARIANTS.md`` beside it.  Each entry comes from the report's own data
(rule, level, source: as the run saw them, even when read back by a newer version) and,
for an id this version's registry knows, what a backend must claim and which faults its
examples draw, as ``ipc-conformance catalogue`` prints them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

#: The ids the page itself uses; an invariant id equal to one would break an anchor.
PAGE_IDS = frozenset({"status", "summary", "backends", "machine", "catalogue"})


def appendix(data: Mapping[str, Any], esc: Any) -> List[str]:
    """The appendix section's lines (``esc`` escapes text for HTML)."""
    known = _registry()
    seen: Dict[str, Mapping[str, Any]] = {}
    for r in data["results"]:
        seen.setdefault(r["invariant"], r)
    if not seen:
        return []
    order = list(known)
    out = ['<section id="catalogue"><h2>Invariants in this report</h2>',
           '<p class="muted">Their catalogue entries; <code>ipc-conformance catalogue</code> prints the whole '
           "catalogue and <code>ipc-conformance explain &lt;id&gt;</code> shows a live counterexample.</p>"]
    for inv_id, r in sorted(seen.items(), key=lambda kv: order.index(kv[0]) if kv[0] in known else len(order)):
        facts = [f"Source: {esc(r['source'])}"] + _facts(known.get(inv_id), esc)
        out.append(f'<div class="entry" id="{esc(inv_id)}"><h3><code>{esc(inv_id)}</code></h3>'
                   f"<p><strong>{esc(r['level'])}.</strong> {esc(r['rule'])}</p><ul>"
                   + "".join(f"<li>{f}</li>" for f in facts) + "</ul></div>")
    out.append("</section>")
    return out


def _facts(inv: Any, esc: Any) -> List[str]:
    if inv is None:  # a report of another version: its own rule and source are all there is
        return []
    needs = ", ".join(f"<code>{esc(c)}</code>" for c in sorted(inv.requires)) or "nothing beyond the kind"
    out = [f"Needs: {needs}"]
    if inv.excluded_by:
        out.append("Not applicable to backends claiming: "
                   + ", ".join(f"<code>{esc(c)}</code>" for c in sorted(inv.excluded_by)))
    if inv.placements:
        out.append(f"Placements: {esc(', '.join(sorted(inv.placements)))}")
    if inv.faults:
        out.append(f"Faults drawn into its examples: {esc(', '.join(sorted(inv.faults)))}")
    return out


def _registry() -> Dict[str, Any]:
    from ipc_specs import all_invariants

    return {inv.id: inv for inv in all_invariants()}


__all__ = ["PAGE_IDS", "appendix"]
