"""Invariants of a semaphore's limits and lifetime: the bound, the maximum value,
removing the name, what the death of a holder does to the value, and what the end of a
process that holds nothing must not do."""

from __future__ import annotations

import os
from typing import List, Tuple

from hypothesis import strategies as st

from ..harness.run import Case, Role
from ..invariant import Level, Unresolved, expect, invariant
from . import lock_roles, roles
from .checks import FAMILY, create, finish_all, max_value, units
from .protocol import BOUNDED, COUNTING, HOLDER_DEATH_RELEASES, NAMED, RELEASE_BY_HOLDER_ONLY, TIMEOUTS, VALUE_READABLE


def _over_release(case: Case, created: int, below: int, cycles: int, bound: int, why: str) -> None:
    """Create at ``created`` = ``bound - below``; ``below`` releases must be accepted, the next rejected."""
    readable = case.claims(VALUE_READABLE)
    limit = min(bound, 8) + 1
    out = case.run([Role("S", roles.over_release, (min(cycles, created), below, readable, limit))],
                   channel_setup=create(created))
    accepted, verdict, value, free = out.value("S")
    h = out.history
    extra = h.of("S", "release")[-2:]
    expect(accepted == below, case.invariant.id, got=f"only {accepted} of {below} releases below {bound} accepted",
           expected=f"all of them (created at {created})", call="release", history=h.format(extra))
    wanted = str(case.backend.overflow_error)
    expect(verdict == wanted, case.invariant.id, got=f"the release at {bound} ({why}) ended {verdict!r}",
           expected=f"rejected with {wanted} (the backend's overflow_error)", call="release", history=h.format(extra))
    if readable:
        expect(value == bound, case.invariant.id, got=f"value() == {value} after the rejected release",
               expected=f"{bound} (a rejected release changes nothing)", call="value", history=h.format(extra))
    expect(free == min(bound, limit), case.invariant.id, got=f"{free} units free after the rejected release",
           expected=f"{min(bound, limit)}", call="try_acquire", history=h.format(extra))


@invariant(
    "bounded_release_above_initial_is_rejected", family=FAMILY, level=Level.MUST,
    rule="A bounded semaphore (or a lock) rejects a release that would raise its value above the value it was "
         "created with, raising its overflow_error and leaving the value unchanged.",
    source="Python docs threading.BoundedSemaphore: 'A bounded semaphore checks to make sure its current value "
           "doesn't exceed its initial value. If it does, ValueError is raised.'; Python docs "
           "multiprocessing.BoundedSemaphore; CPython _TestSemaphore.test_bounded_semaphore",
    requires=[BOUNDED],
)
def bounded_release_above_initial_is_rejected(backend: object, case: Case) -> None:
    def body(value: int, cycles: int) -> None:
        _over_release(case, value, 0, cycles, value, "the created value")

    case.explore(body, value=units(case), cycles=st.integers(0, 3))


@invariant(
    "release_at_max_value_is_rejected", family=FAMILY, level=Level.MUST,
    rule="A release at the backend's max_value is rejected with its overflow_error and leaves the value "
         "unchanged, while every release below it is accepted: the value never wraps or saturates silently.",
    source="sem_post(3) EOVERFLOW: 'The maximum allowable value for a semaphore would be exceeded.'; semop(2) "
           "ERANGE: 'For some operation sem_op+semval is greater than SEMVMX'; LTP "
           "testcases/kernel/syscalls/ipc/semop/semop02.c; CPython Modules/_multiprocessing/semaphore.c ('semaphore "
           "or lock released too many times')",
)
def release_at_max_value_is_rejected(backend: object, case: Case) -> None:
    top = max_value(case)
    # A bounded semaphore is created at its bound (its rejection below the maximum is the
    # invariant above); a counting one is created a few units under the maximum, so the
    # releases that reach it must be accepted and only the one beyond rejected.
    below = st.integers(0, 3) if case.claims(COUNTING) and not case.claims(BOUNDED) else st.just(0)

    def body(below: int, cycles: int) -> None:
        below = min(below, top)
        _over_release(case, top - below, below, cycles, top, f"max_value={top}")

    case.explore(body, scale=0.5, below=below, cycles=st.integers(0, 3))


@invariant(
    "unlinked_name_keeps_handles_and_is_reusable", family=FAMILY, level=Level.MUST,
    rule="After the name is unlinked, handles opened before keep using the old semaphore, and the name can "
         "be created afresh (exclusively) as a new semaphore whose value is independent of the old one.",
    source="sem_unlink(3): 'The semaphore name is removed immediately. The semaphore is destroyed once all other "
           "processes that have the semaphore open close it.'; LTP open_posix_testsuite sem_unlink assertions 2, 6 "
           "and 9",
    requires=[NAMED],
)
def unlinked_name_keeps_handles_and_is_reusable(backend: object, case: Case) -> None:
    def body(old: int, new: int) -> None:
        limit = max(old, new) + 1
        out = case.run([Role("A", roles.use_old_handle_after_unlink, (limit,)),
                        Role("B", roles.unlink_and_reuse, (new, limit), opens=False)], channel_setup=create(old))
        finish_all(out)
        h = out.history
        focus = h.of("B", "reuse_name") + h.of("A", "try_acquire")[:1]
        expect(out.value("A") == old, case.invariant.id,
               got=f"the handle opened before unlink counted {out.value('A')} free units",
               expected=f"{old} (the old semaphore's value, untouched by the new one's {new})",
               call="try_acquire", history=h.format(focus))
        expect(out.value("B") == new, case.invariant.id, got=f"the reused name's semaphore had {out.value('B')} units",
               expected=f"{new}, the value it was created with", call="try_acquire", history=h.format(focus))

    case.explore(body, scale=0.5, old=units(case, high=3), new=units(case, high=3))


@invariant(
    "killed_holder_releases_only_where_claimed", family=FAMILY, level=Level.MUST,
    rule="When a process holding units is killed with SIGKILL, its units come back if the backend claims "
         "holder_death_releases (SEM_UNDO, flock) and stay taken otherwise: only an undo the backend "
         "asked for may change the value behind the processes' backs.",
    source="semop(2): 'If an operation specifies SEM_UNDO, it will be automatically undone when the process "
           "terminates.'; flock(2): 'the lock is released either by an explicit LOCK_UN operation on any of these "
           "duplicate file descriptors, or when all such file descriptors have been closed'; sem_overview(7) "
           "(paraphrase: only sem_post(3) increments a POSIX semaphore, so nothing returns a dead holder's units); "
           "sysv_ipc documentation on SEM_UNDO",
    placements=["fork", "spawn", "forkserver"],
)
def killed_holder_releases_only_where_claimed(backend: object, case: Case) -> None:
    """One invariant with a claim-dependent expectation rather than two ids: death of a
    holder is one fact about the backend, and the claim says which way it goes.  A
    backend that does not claim the capability is still checked (its value must stay)."""
    if not hasattr(os, "pidfd_open"):
        raise Unresolved("os.pidfd_open is missing (Python < 3.9 or Linux < 5.3): cannot wait for the holder's death")
    returns = case.claims(HOLDER_DEATH_RELEASES)

    def body(value: int, held: int) -> None:
        held = max(1, min(held, value))
        out = case.run([Role("H", roles.hold_until_killed, (held,)),
                        Role("O", roles.kill_holder_then_count, (value + 1,))], channel_setup=create(value))
        free = out.value("O")
        h = out.history
        want = value if returns else value - held
        how = "claims holder_death_releases" if returns else "does not claim holder_death_releases"
        expect(free == want, case.invariant.id,
               got=f"{free} units free after H (holding {held} of {value}) died by SIGKILL",
               expected=f"{want} (the backend {how})", call="try_acquire",
               history=h.format(h.of("O", "await_exit") + h.of("H", "acquire")[-1:]))

    case.explore(body, scale=0.5, value=units(case, low=1, high=3), held=st.integers(1, 3))


@invariant(
    "losers_end_without_giving_units_back", family=FAMILY, level=Level.MUST,
    rule="Processes whose acquire failed while another holds every unit, and that then end (a release of "
         "nothing where the backend claims release_by_holder_only, a close, a normal exit with its atexit "
         "handlers and finalizers, or _exit), give no unit back: a third process is still refused until the "
         "holder releases.",
    source="sem_overview(7) (paraphrase: only sem_post(3) increments a semaphore, so a process that took nothing "
           "has nothing to give back when it closes or exits); flock(2) (a lock is released by LOCK_UN on its own "
           "description or by closing it); Python docs atexit (handlers run at normal interpreter termination)",
)
def losers_end_without_giving_units_back(backend: object, case: Case) -> None:
    """A backend that does not claim release_by_holder_only is not made to release in a
    loser (multiprocessing.Lock may be released by any process, as its docs say); every
    backend is drawn losers that close and exit, normally or by _exit."""
    stray = st.booleans() if case.claims(RELEASE_BY_HOLDER_ONLY) else st.just(False)
    modes = st.tuples(st.just("try"), st.just(0))
    if case.claims(TIMEOUTS):
        modes = modes | st.tuples(st.just("timed"), st.sampled_from([0, 1, 10]) | st.integers(0, 30))

    def body(value: int, losers: List[Tuple[Tuple[str, int], bool, str]]) -> None:
        names = [f"L{i}" for i in range(len(losers))]
        ls = [Role(n, lock_roles.lose_then_end, (mode, ms, s), exit=e) for n, ((mode, ms), s, e) in zip(names, losers)]
        out = case.run([Role("H", lock_roles.hold_all_until, (value, "third-tried")),
                        Role("T", lock_roles.third_after_losers, (names, value))] + ls, channel_setup=create(value))
        h = out.history
        ended = ", ".join(f"{n} {'released nothing, ' if s else ''}exited by {e}"
                          for n, (_, s, e) in zip(names, losers))
        # T's first try, from its history and before the roles' own errors: a unit T should
        # not have had makes H's release fail, and T then waits for a release that never comes.
        tries = h.of("T", "try_acquire")[:2]
        expect(not (len(tries) == 2 and tries[1].detail == "True"), case.invariant.id,
               got=f"T took a unit H still held after the losers ended ({ended})",
               expected=f"False (H holds all {value} units)", call="try_acquire", history=h.format(tries))
        finish_all(out)
        for n in names:
            expect(not out.value(n), case.invariant.id, got=f"{n}'s acquire succeeded while H held all {value} units",
                   expected="False", call="acquire", history=h.format(h.of(n)))
        expect(out.value("T")[1], case.invariant.id, got="T could not take a unit after H released them",
               expected="True", call="try_acquire", history=h.format(h.of("T", "try_acquire")[-2:]))

    case.explore(body, scale=0.5, value=units(case, low=1, high=2),
                 losers=st.lists(st.tuples(modes, stray, st.sampled_from(["normal", "_exit"])), min_size=1, max_size=2))
