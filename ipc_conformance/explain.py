"""``ipc-conformance explain``: the rule, its source, who keeps it, and a live counterexample.

The counterexample is not stored text: explain runs the invariant's broken
twin(s) now, with shrinking on, and prints what Hypothesis found, history
included.  The reference backends that claim the invariant are checked live
too (fork placement), so the answer reflects this machine.
"""

from __future__ import annotations

import difflib
from typing import Any, Dict, List

from ipc_specs import Harness, Unresolved, Unsupported, Violation, all_invariants, check, kinds


def explain(query: str, *, deadline_s: float = 5.0) -> int:
    """Explain one invariant, found by id, by a gallery exhibit's name, or by a unique
    case-insensitive substring; list the matches of a family or of several ids."""
    from ipc_impls.broken import all_exhibits

    invariants = all_invariants()
    by_id = {inv.id: inv for inv in invariants}
    exhibits = {e.backend.name: e for e in all_exhibits()}
    q = query.strip().lower()
    if q in ("exhibits", "gallery"):
        return _list_exhibits(exhibits)
    if q in by_id:
        return _explain_one(by_id[q], deadline_s)
    if q in exhibits:
        return _explain_one(by_id[exhibits[q].breaks], deadline_s, only=q)
    matches = [inv for inv in invariants if q in inv.id or inv.family == q]
    matches += [by_id[e.breaks] for n, e in exhibits.items() if q in n and by_id[e.breaks] not in matches]
    if len(matches) == 1:
        return _explain_one(matches[0], deadline_s)
    if matches:
        print(f"{len(matches)} invariant(s) match {query!r}:")
        for inv in matches:
            print(f"  {inv.id} ({inv.level.value}, {inv.family})")
        print("\nrun `ipc-conformance explain <id>` for one of them")
        return 0
    close = difflib.get_close_matches(q, list(by_id) + list(kinds()) + list(exhibits), n=5, cutoff=0.5)
    print(f"no invariant, family or exhibit called {query!r}." + (f" Did you mean: {', '.join(close)}?" if close
                                                                  else "")
          + " `ipc-conformance explain exhibits` lists the gallery.")
    return 2


def _list_exhibits(exhibits: Dict[str, Any]) -> int:
    print(f"{len(exhibits)} broken backends in the gallery (ipc_impls/broken/), each caught by one invariant:")
    for name, e in sorted(exhibits.items(), key=lambda item: (item[1].breaks, item[0])):
        print(f"  {name:<40} breaks {e.breaks}" + (f" (with the {e.fault} fault)" if e.fault else ""))
    return 0


def _explain_one(inv: Any, deadline_s: float, only: str = "") -> int:
    from ipc_impls import reference_backends
    from ipc_impls.broken import all_exhibits

    print(f"{inv.id}  [{inv.level.value}, {inv.family}]\n")
    print(f"rule:    {inv.rule}")
    print(f"source:  {inv.source}")
    print(f"needs:   {', '.join(sorted(inv.requires)) or 'nothing beyond the kind'}")
    if inv.excluded_by:
        print(f"n/a for: backends claiming {', '.join(sorted(inv.excluded_by))}")
    harness = Harness(deadline_s=deadline_s, profile="fast")
    try:
        print("\nreference backends (checked now, fork placement unless the invariant says otherwise):")
        for backend in (b for b in reference_backends() if b.kind == inv.family):
            print(f"  {backend.name:<24} ", end="", flush=True)  # progress: a live check takes seconds
            print(_verdict(backend, inv, harness), flush=True)
        twins = [e for e in all_exhibits() if e.breaks == inv.id and (not only or e.backend.name == only)]
        for exhibit in twins:
            print(f"\nbroken twin `{exhibit.backend.name}`: {exhibit.lesson}\n    (running it now…)", flush=True)
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
