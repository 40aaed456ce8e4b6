"""``ipc-conformance explain``: the rule, its source, who keeps it, and a live counterexample.

The counterexample is not stored text: explain runs the invariant's broken
twin(s) now, with shrinking on, and prints what Hypothesis found, history
included.  The reference backends that claim the invariant are checked live
too (fork placement), so the answer reflects this machine.
"""

from __future__ import annotations

import difflib
from typing import Any, List

from ipc_specs import Harness, Unresolved, Unsupported, Violation, all_invariants, check, kinds


def explain(query: str, *, deadline_s: float = 5.0) -> int:
    invariants = all_invariants()
    by_id = {inv.id: inv for inv in invariants}
    if query in by_id:
        return _explain_one(by_id[query], deadline_s)
    matches = [inv for inv in invariants if inv.id.startswith(query) or inv.family == query]
    if matches:
        print(f"{len(matches)} invariant(s) match {query!r}:")
        for inv in matches:
            print(f"  {inv.id:<56} {inv.level.value:<6} {inv.family}")
        print("\nrun `ipc-conformance explain <id>` for one of them")
        return 0
    close = difflib.get_close_matches(query, list(by_id) + list(kinds()), n=5, cutoff=0.5)
    print(f"no invariant or family called {query!r}." + (f" Did you mean: {', '.join(close)}?" if close else ""))
    return 2


def _explain_one(inv: Any, deadline_s: float) -> int:
    from ipc_impls import reference_backends
    from ipc_impls.broken import all_exhibits

    print(f"{inv.id}  [{inv.level.value}, {inv.family}]\n")
    print(f"rule:    {inv.rule}")
    print(f"source:  {inv.source}")
    print(f"needs:   {', '.join(sorted(inv.requires)) or 'nothing beyond the kind'}")
    harness = Harness(deadline_s=deadline_s, profile="fast")
    try:
        print("\nreference backends (checked now, fork placement unless the invariant says otherwise):")
        for backend in (b for b in reference_backends() if b.kind == inv.family):
            print(f"  {backend.name:<24} {_verdict(backend, inv, harness)}")
        twins = [e for e in all_exhibits() if e.breaks == inv.id]
        for exhibit in twins:
            print(f"\nbroken twin `{exhibit.backend.name}`: {exhibit.lesson}")
            print(_counterexample(exhibit, inv, harness))
    finally:
        harness.close()
    return 0


def _placement(inv: Any) -> str:
    return "fork" if not inv.placements or "fork" in inv.placements else sorted(inv.placements)[0]


def _verdict(backend: Any, inv: Any, harness: Harness) -> str:
    try:
        check(backend, inv.id, placement=_placement(inv), harness=harness)
    except Unsupported as exc:
        return f"not claimed ({exc})"
    except Unresolved as exc:
        return f"unresolved on this machine ({exc})"
    except Violation as exc:
        return f"FAILS: got={exc.got}"
    return "holds"


def _counterexample(exhibit: Any, inv: Any, harness: Harness) -> str:
    try:
        check(exhibit.backend, inv.id, placement=exhibit.placement, harness=harness)
    except Violation as exc:
        notes: List[str] = list(getattr(exc, "__notes__", []))
        shown = [line for line in notes if not line.startswith("You can reproduce")]
        return _indent(str(exc) + ("\n" + "\n".join(shown) if shown else ""))
    except (Unsupported, Unresolved) as exc:
        return _indent(f"(could not run here: {exc})")
    return _indent("(the twin was not caught this time: that is a bug in the suite, please report it)")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
