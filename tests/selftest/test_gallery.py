"""Every exhibit of the broken gallery is caught, by the invariant it breaks.

This is what keeps the suite honest: an invariant that no broken backend can
fail is a check that cannot fail, which the project treats as a defect.
"""

from __future__ import annotations

import pytest

from ipc_impls.broken import Exhibit, all_exhibits
from ipc_specs import Harness, Unresolved, Violation, all_invariants, check
from ipc_specs.harness.faults import FAULTS
from ipc_specs.invariant import get_invariant

EXHIBITS = all_exhibits()


@pytest.mark.parametrize("exhibit", EXHIBITS, ids=[e.name for e in EXHIBITS])
def test_exhibit_is_caught_by_the_invariant_it_breaks(exhibit: Exhibit, quick_harness: Harness) -> None:
    try:
        with pytest.raises(Violation) as caught:
            check(exhibit.backend, exhibit.breaks, placement=exhibit.placement, harness=quick_harness)
    except Unresolved as exc:  # the machine cannot host the check (a missing package, a low limit)
        pytest.skip(f"unresolved: {exc}")
    assert caught.value.invariant == exhibit.breaks, caught.value
    if exhibit.hangs:
        assert "hung in" in caught.value.got


FAULTY = [e for e in EXHIBITS if e.fault]


@pytest.mark.parametrize("exhibit", FAULTY, ids=[e.name for e in FAULTY])
def test_fault_exhibit_passes_without_its_fault(exhibit: Exhibit) -> None:
    """Such an exhibit shows that the drawn fault bites: with faults off it must pass,
    or it would be caught by the invariant's own data and show nothing about the fault."""
    assert exhibit.fault in get_invariant(exhibit.breaks).faults
    harness = Harness(deadline_s=3.0, profile="ci", shrink=False, replays=1, faults=False)
    try:
        check(exhibit.backend, exhibit.breaks, placement=exhibit.placement, harness=harness)
    finally:
        assert harness.close() == []


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_has_an_exhibit_in_each_family_that_draws_it(fault: str) -> None:
    drawing = {i.family for i in all_invariants() if fault in i.faults}
    shown = {get_invariant(e.breaks).family for e in FAULTY if e.fault == fault}
    assert drawing and drawing <= shown, drawing - shown


@pytest.mark.parametrize("inv", all_invariants(), ids=[i.id for i in all_invariants()])
def test_every_invariant_has_a_broken_twin(inv) -> None:  # type: ignore[no-untyped-def]
    twins = [e for e in EXHIBITS if e.breaks == inv.id]
    assert twins, f"{inv.id} has no exhibit in ipc_impls/broken: nothing shows that it can fail"


def test_exhibit_names_are_unique() -> None:
    names = [e.backend.name for e in EXHIBITS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("exhibit", EXHIBITS, ids=[e.name for e in EXHIBITS])
def test_exhibit_lesson_is_one_sentence(exhibit: Exhibit) -> None:
    assert exhibit.lesson.endswith(".") and exhibit.lesson.count(". ") == 0, exhibit.lesson


def test_the_order_among_standard_signals_is_not_asserted(quick_harness: Harness) -> None:
    """signal(7) leaves the order of pending standard signals unspecified (Linux itself
    dequeues SIGSEGV before SIGHUP), so a backend handing them out highest number first,
    and otherwise keeping the rule, must pass."""
    import signal

    from ipc_impls.broken.signals import _variant
    from ipc_impls.signals import PosixSignals

    class ReversedStandard(PosixSignals):
        def __init__(self) -> None:
            self.drained: list = []  # type: ignore[type-arg]

        def sigtimedwait(self, signals, timeout):  # type: ignore[no-untyped-def]
            wanted = list(signals)
            while True:
                got = super().sigtimedwait(wanted, 0)
                if got is None:
                    break
                self.drained.append(got)
            rtmin = int(signal.SIGRTMIN)
            self.drained.sort(key=lambda item: (item[0] >= rtmin, -item[0] if item[0] < rtmin else 0))
            return self.drained.pop(0) if self.drained else super().sigtimedwait(wanted, timeout)

    backend = _variant("reversed-standard-order", ReversedStandard)
    check(backend, "pending_signals_dequeue_standard_first_then_realtime_ascending", placement="fork",
          harness=quick_harness)


def test_o_append_check_is_unresolved_on_nfs(monkeypatch: pytest.MonkeyPatch, quick_harness: Harness) -> None:
    """open(2) warns that O_APPEND may corrupt files on NFS: there the rule does not hold, so
    the check reports the machine, not the backend."""
    from ipc_impls import reference_backends
    from ipc_specs import limits

    backend = next(b for b in reference_backends() if b.name == "o-append-log")
    monkeypatch.setattr(limits, "filesystem_type", lambda path: "nfs4")
    with pytest.raises(Unresolved, match="NFS"):
        check(backend, "appended_records_never_lost_or_torn", placement="fork", harness=quick_harness)
