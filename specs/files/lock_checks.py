"""Invariants of file locks: one holder across every client of the path (the backend's own
and plain flock/lockf programs), failed contenders that change nothing, losers that clean
up, closes of other descriptors, re-entrancy and threads.

Holders are counted from the histories (``inside`` after an acquire returned True,
``leaving`` before the release), never from the lock itself; timed acquires are judged
only from below ("failed no earlier than its timeout").  Contenders, their clients and
attempts, hold times and the way losers end are drawn; hold times are milliseconds.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from hypothesis import strategies as st

from ..harness.history import INVOKE, OK, Event, History, describe_wait, waited_at_least
from ..harness.run import Case, Role
from ..invariant import Level, Unsupported, expect, invariant
from . import lock_roles as lr
from .protocol import (
    INTEROPERATES_WITH_FLOCK,
    INTEROPERATES_WITH_LOCKF,
    LOCK,
    LOCK_EXCLUDES_THREADS,
    LOCK_FILE_HOLDS_DATA,
    LOCK_OWNED_BY_PROCESS,
    LOCK_REENTRANT,
    LOCK_TIMEOUTS,
)

FAMILY = "file"


# --- drawing -------------------------------------------------------------------------------
def attempts(case: Case) -> st.SearchStrategy[lr.Attempt]:
    """A failing attempt: a try, or (``lock_timeouts``) a timed acquire of 0 to 30 ms."""
    tries = st.just(("try", 0))
    if not case.claims(LOCK_TIMEOUTS):
        return tries
    return st.one_of(tries, st.tuples(st.just("timed"), st.sampled_from([0, 1, 10]) | st.integers(0, 30)))


def hold_ms() -> st.SearchStrategy[int]:
    return st.sampled_from([0, 1, 5]) | st.integers(0, 20)


def holder_attempt(case: Case) -> st.SearchStrategy[lr.Attempt]:
    """How the holder takes the free lock: blocking, a try or (``lock_timeouts``) a timed
    acquire; each must succeed."""
    ways = [("block", 0), ("try", 0)] + ([("timed", 0), ("timed", 10)] if case.claims(LOCK_TIMEOUTS) else [])
    return st.sampled_from(ways)


# --- judging -------------------------------------------------------------------------------
def holders_overlap(h: History, procs: Sequence[str]) -> Tuple[int, List[Event]]:
    """The most processes inside at one instant, and their ``inside`` notes (an interval
    that ends when another starts does not overlap it)."""
    points = []
    for p in procs:
        for a, b in zip(h.of(p, "inside"), h.of(p, "leaving")):
            points += [(a.t_ns, 1, a), (b.t_ns, 0, a)]
    now: Dict[Event, None] = {}
    peak: List[Event] = []
    for _, kind, start in sorted(points, key=lambda x: (x[0], x[1])):
        if kind:
            now[start] = None
            if len(now) > len(peak):
                peak = list(now)
        else:
            now.pop(start, None)
    return len(peak), peak


def expect_one_holder(case: Case, h: History, procs: Sequence[str]) -> None:
    peak, who = holders_overlap(h, procs)
    expect(peak <= 1, case.invariant.id, got=f"{peak} holders at once ({', '.join(e.proc for e in who)})",
           expected="one holder at a time across every client of the lock file", call="acquire",
           history=h.format(who))


def expect_failed_attempt(case: Case, h: History, proc: str, attempt: lr.Attempt, got: bool, client: str) -> None:
    how, ms = attempt
    op = "acquire" if client == lr.BACKEND else f"{client}.acquire"
    calls = list(zip(h.of(proc, op, INVOKE), h.of(proc, op, OK)))[:1]
    expect(not got, case.invariant.id, got=f"{proc}'s {how} acquire ({client}) succeeded while H held the lock",
           expected="False (H holds it)", call="acquire", history=h.format([e for c in calls for e in c]))
    if how == "timed" and calls:
        start, end = calls[0]
        expect(waited_at_least(start, end, ms), case.invariant.id,
               got=f"{proc}'s acquire(timeout={ms} ms) failed after {describe_wait(start, end)}",
               expected=f"a failure no earlier than its timeout of {ms} ms", call="acquire",
               history=h.format([start, end]))


def expect_holder(case: Case, taken: bool, history: str) -> None:
    expect(taken, case.invariant.id, got="H could not take the free lock", expected="True (nobody held it)",
           call="acquire", history=history)


# --- one holder across clients ---------------------------------------------------------------
def _contention(case: Case, clients: Sequence[str], firsts: Sequence[lr.Attempt], holds: Sequence[int],
                held_ms: int, how: lr.Attempt, newcomer: bool) -> None:
    """H holds; each C<i> (a client of the drawn kind) fails one attempt, then blocks until
    H releases and holds for a while; N, a backend client, arrives once H released."""
    n = len(clients)
    cs = [Role(f"C{i}", lr.contender, (i, clients[i], firsts[i], holds[i])) for i in range(n)]
    extra = [Role("N", lr.newcomer, (holds[0],))] if newcomer else []
    out = case.run([Role("H", lr.holder, (how, False, "", [f"tried-{i}" for i in range(n)], held_ms))] + cs + extra)
    for role in out.roles:
        out.value(role)
    h = out.history
    expect_holder(case, out.value("H")[0], h.format(h.of("H")))
    for i in range(n):
        expect_failed_attempt(case, h, f"C{i}", firsts[i], out.value(f"C{i}"), clients[i])
    expect_one_holder(case, h, list(out.roles))


def _clients_and_attempts(case: Case, kinds: Sequence[str]) -> st.SearchStrategy[List[Tuple[str, lr.Attempt, int]]]:
    return st.lists(st.tuples(st.sampled_from(list(kinds)), attempts(case), hold_ms()), min_size=1, max_size=3)


@invariant(
    "exclusive_lock_excludes_other_processes", family=FAMILY, level=Level.MUST,
    rule="While one process holds the exclusive lock no other process can take it (a nonblocking or timed "
         "acquire fails), and once the holder releases, the processes waiting for it take it one at a time.",
    source="flock(2) LOCK_EX: 'Only one process may hold an exclusive lock for a given file at a given time.'; "
           "fcntl(2) F_SETLK, F_SETLKW; CPython Lib/test/test_fcntl.py test_flock, test_lockf_exclusive",
    requires=[LOCK],
)
def exclusive_lock_excludes_other_processes(backend: object, case: Case) -> None:
    def body(contenders: List[Tuple[str, lr.Attempt, int]], held_ms: int, how: lr.Attempt) -> None:
        _contention(case, [c[0] for c in contenders], [c[1] for c in contenders], [c[2] for c in contenders],
                    held_ms, how, newcomer=False)

    case.explore(body, scale=0.5, contenders=_clients_and_attempts(case, [lr.BACKEND]), held_ms=hold_ms(),
                 how=holder_attempt(case))


@invariant(
    "lock_excludes_flock_and_lockf_clients_on_its_path", family=FAMILY, level=Level.MUST,
    rule="A lock that claims to be an flock or lockf lock on its path excludes plain fcntl.flock or fcntl.lockf "
         "programs that open that path while it is held, and a backend client arriving after the release: "
         "never two holders across all clients (the file is neither replaced nor a stand-in).",
    source="flock(2): 'Only one process may hold an exclusive lock for a given file at a given time.' and, on "
           "Linux, flock() and fcntl(2) locks do not interact (paraphrase of NOTES: flock() is its own system call, "
           "so a lockf client is excluded only by a record lock); fcntl(2) Advisory record locking; unlink(2) "
           "(paraphrase: a lock on an unlinked inode excludes no one who opens the path afresh)",
    requires=[LOCK],
)
def lock_excludes_flock_and_lockf_clients_on_its_path(backend: object, case: Case) -> None:
    foreign = [k for k, cap in ((lr.FLOCK, INTEROPERATES_WITH_FLOCK), (lr.LOCKF, INTEROPERATES_WITH_LOCKF))
               if case.claims(cap)]
    if not foreign:
        raise Unsupported(f"backend claims neither {INTEROPERATES_WITH_FLOCK} nor {INTEROPERATES_WITH_LOCKF}")

    def body(first: lr.Attempt, first_hold: int, contenders: List[Tuple[str, lr.Attempt, int]], held_ms: int,
             how: lr.Attempt, kind: str) -> None:
        cs = [(kind, first, first_hold)] + contenders  # at least one plain client
        _contention(case, [c[0] for c in cs], [c[1] for c in cs], [c[2] for c in cs], held_ms, how, newcomer=True)

    case.explore(body, scale=0.5, first=attempts(case), first_hold=hold_ms(), held_ms=hold_ms(),
                 contenders=st.lists(st.tuples(st.sampled_from([lr.BACKEND] + foreign), attempts(case), hold_ms()),
                                     max_size=2),
                 how=holder_attempt(case), kind=st.sampled_from(foreign))


# --- failed contenders ---------------------------------------------------------------------
def _changes(before: lr.FileState, after: lr.FileState) -> str:
    (ino0, data0), (ino1, data1) = before, after
    said = []
    if ino1 is None:
        said.append("the lock path is gone")
    elif ino1 != ino0:
        said.append(f"the lock path names another inode ({ino1[1]}, was {ino0[1] if ino0 else None})")
    if data1 != data0:
        said.append(f"the holder's file holds {data1!r} (was {data0!r})")
    return "; ".join(said)


@invariant(
    "failed_acquire_leaves_lock_and_file_untouched", family=FAMILY, level=Level.MUST,
    rule="Contenders whose nonblocking or timed acquire fails change nothing: the holder keeps the lock (a "
         "fresh client is still excluded), the lock path names the same inode, and its contents (the holder's "
         "PID, where the backend lets the file carry data) are byte for byte as before.",
    source="flock(2) EWOULDBLOCK and fcntl(2) F_SETLK EACCES/EAGAIN (paraphrase: a conflicting request fails and "
           "the existing lock stays); open(2) O_TRUNC (paraphrase: opening with 'w' truncates the file whatever the "
           "lock); Python docs os.open",
    requires=[LOCK],
)
def failed_acquire_leaves_lock_and_file_untouched(backend: object, case: Case) -> None:
    data = case.claims(LOCK_FILE_HOLDS_DATA)

    def body(tries: List[lr.Attempt], how: lr.Attempt) -> None:
        n = len(tries)
        done = [f"done-{i}" for i in range(n)]
        cs = [Role(f"C{i}", lr.failed_attempt, (i, tries[i], False)) for i in range(n)]
        out = case.run([Role("H", lr.holder, (how, data, "", done, 0, ["probed"])),
                        Role("P", lr.probe, (["checked"], "probed"))] + cs)
        for role in out.roles:
            out.value(role)
        h = out.history
        taken, before, after = out.value("H")
        expect_holder(case, taken, h.format(h.of("H")))
        for i in range(n):
            expect_failed_attempt(case, h, f"C{i}", tries[i], out.value(f"C{i}"), lr.BACKEND)
        expect(after == before, case.invariant.id, got=f"after the failed attempts {_changes(before, after)}",
               expected="the same inode under the lock path, with the same contents", call="acquire",
               history=h.format(h.of("C0")))
        first, second = out.value("P")
        expect(not first, case.invariant.id, got="a fresh client took the lock after the failed attempts",
               expected="False (H still holds it)", call="acquire", history=h.format(h.of("P")))
        expect(second, case.invariant.id, got="P could not take the lock H released", expected="True",
               call="acquire", history=h.format(h.of("P")))

    case.explore(body, scale=0.5, tries=st.lists(attempts(case), min_size=1, max_size=3), how=holder_attempt(case))


@invariant(
    "failed_contender_cleanup_keeps_holder_excluding", family=FAMILY, level=Level.MUST,
    rule="A contender whose acquire failed and that then calls release(), closes its lock and exits (normally, "
         "running its atexit handlers and finalizers, or by _exit) leaves the holder's lock in force: a third "
         "process is still excluded until the holder releases.",
    source="flock(2): 'the lock is released either by an explicit LOCK_UN operation on any of these duplicate file "
           "descriptors, or when all such file descriptors have been closed' (paraphrase: only the holder's own "
           "descriptions release it); Python docs atexit (handlers run at normal interpreter termination); "
           "Python docs threading.Lock.release (releasing an unlocked lock raises RuntimeError, changing nothing)",
    requires=[LOCK],
)
def failed_contender_cleanup_keeps_holder_excluding(backend: object, case: Case) -> None:
    def body(losers: List[Tuple[lr.Attempt, bool, str]], how: lr.Attempt) -> None:
        n = len(losers)
        exited = [f"exited-L{i}" for i in range(n)]
        ls = [Role(f"L{i}", lr.failed_attempt, (i, a, release), exit=ending)
              for i, (a, release, ending) in enumerate(losers)]
        out = case.run([Role("H", lr.holder, (how, False, "", ["third-tried"], 0)),
                        Role("T", lr.probe, (exited, "third-tried"))] + ls)
        for role in out.roles:
            out.value(role)
        h = out.history
        expect_holder(case, out.value("H")[0], h.format(h.of("H")))
        for i, (a, _, _) in enumerate(losers):
            expect_failed_attempt(case, h, f"L{i}", a, out.value(f"L{i}"), lr.BACKEND)
        first, second = out.value("T")
        how_ended = ", ".join(f"L{i} {'released, ' if r else ''}exited by {e}" for i, (_, r, e) in enumerate(losers))
        expect(not first, case.invariant.id, got=f"T took the lock H holds after the losers ended ({how_ended})",
               expected="False (H still holds it)", call="acquire", history=h.format(h.of("T")))
        expect(second, case.invariant.id, got="T could not take the lock H released", expected="True",
               call="acquire", history=h.format(h.of("T")))

    ending = st.sampled_from(["normal", "_exit"])
    case.explore(body, scale=0.5, losers=st.lists(st.tuples(attempts(case), st.booleans(), ending),
                                                  min_size=1, max_size=2), how=holder_attempt(case))


# --- another descriptor ----------------------------------------------------------------------
def _touched(case: Case, touch: str, tries: Sequence[lr.Attempt]) -> Tuple[List[bool], str]:
    n = len(tries)
    done = [f"done-{i}" for i in range(n)]
    cs = [Role(f"C{i}", lr.failed_attempt, (i, tries[i], False)) for i in range(n)]
    out = case.run([Role("H", lr.holder, (("block", 0), False, touch, done, 0))] + cs)
    for role in out.roles:
        out.value(role)
    h = out.history
    expect_holder(case, out.value("H")[0], h.format(h.of("H")))
    return [bool(out.value(f"C{i}")) for i in range(n)], h.format(h.of("H", "touch") + h.of("C0"))


@invariant(
    "flock_survives_closing_another_descriptor", family=FAMILY, level=Level.MUST,
    rule="A lock stays held when its holder opens and closes another descriptor of the lock file (reads it, "
         "logs into it), whatever the backend is built on, unless it claims lock_owned_by_process "
         "(record-lock semantics), which users must then know about.",
    source="flock(2): 'Locks created by flock() are associated with an open file description (see open(2)).'; "
           "fcntl(2): 'If a process closes any file descriptor referring to a file, then all of the process's locks "
           "on that file are released, regardless of the file descriptor(s) on which the locks were obtained.' "
           "(the hazard a backend must claim)",
    requires=[LOCK],
)
def flock_survives_closing_another_descriptor(backend: object, case: Case) -> None:
    if case.claims(LOCK_OWNED_BY_PROCESS):
        raise Unsupported(f"backend claims {LOCK_OWNED_BY_PROCESS}: closing any descriptor releases its lock")

    def body(touch: str, tries: List[lr.Attempt]) -> None:
        got, history = _touched(case, touch, tries)
        expect(not any(got), case.invariant.id, got=f"contenders' acquires returned {got} after H {touch} the file "
               "through another descriptor", expected="all False: the lock still held by H", call="acquire",
               history=history)

    case.explore(body, scale=0.25, touch=st.sampled_from(lr.TOUCHES),
                 tries=st.lists(attempts(case), min_size=1, max_size=2))


@invariant(
    "lockf_released_by_closing_any_descriptor", family=FAMILY, level=Level.MUST,
    rule="A lock owned by the process (fcntl record locks, lockf) is released when the holder closes ANY "
         "descriptor of the file, even one it opened only to read: another process can then take it.",
    source="fcntl(2): 'If a process closes any file descriptor referring to a file, then all of the process's locks "
           "on that file are released, regardless of the file descriptor(s) on which the locks were obtained.'",
    requires=[LOCK, LOCK_OWNED_BY_PROCESS],
)
def lockf_released_by_closing_any_descriptor(backend: object, case: Case) -> None:
    def body(touch: str) -> None:
        got, history = _touched(case, touch, [("try", 0)])
        expect(got[0], case.invariant.id, got=f"C0 could not take the lock after H {touch} another descriptor",
               expected="the lock released by that close (it belongs to the process, not the descriptor)",
               call="acquire", history=history)

    case.explore(body, scale=0.25, touch=st.sampled_from(lr.TOUCHES))


# --- what a holder may do again, and threads -------------------------------------------------
@invariant(
    "reentrant_lock_admits_its_holder_again", family=FAMILY, level=Level.MUST,
    rule="A re-entrant lock lets its holder acquire it again at once (a try or a timed acquire succeeds), and "
         "stays held by it until as many releases: another process is excluded until the last.",
    source="Python docs threading.RLock: 'Once a thread has acquired a reentrant lock, the same thread may acquire "
           "it again without blocking; the thread must release it once for each time it has acquired it.'",
    requires=[LOCK, LOCK_REENTRANT],
)
def reentrant_lock_admits_its_holder_again(backend: object, case: Case) -> None:
    def body(again: List[lr.Attempt]) -> None:
        out = case.run([Role("H", lr.reenter, (again,)), Role("P", lr.probe, (["held"], "probed"))])
        got = out.value("H")
        h = out.history
        expect(all(got), case.invariant.id, got=f"the holder's further acquires returned {got}",
               expected=f"{[True] * len(again)} (re-entrant)", call="acquire", history=h.format(h.of("H")))
        first, second = out.value("P")
        expect(not first, case.invariant.id, got="P took the lock while H held it once more than it released",
               expected="False", call="acquire", history=h.format(h.of("P")))
        expect(second, case.invariant.id, got="P could not take the lock after H's last release", expected="True",
               call="acquire", history=h.format(h.of("P")))

    # Only tries and short timed acquires: a lock that conflicts with itself then fails, never hangs.
    case.explore(body, scale=0.25, again=st.lists(attempts(case), min_size=1, max_size=3))


@invariant(
    "lock_excludes_threads_of_its_process", family=FAMILY, level=Level.MUST,
    rule="A lock that claims to exclude threads does so between two lock objects opened by two threads of one "
         "process (without the claim, threads of a process may share it, as with record locks).",
    source="flock(2) (paraphrase: a lock taken through one open file description conflicts with one taken through "
           "another, even in the same process); fcntl(2) (paraphrase: record locks are owned by the process, so "
           "they do not exclude its threads)",
    requires=[LOCK, LOCK_EXCLUDES_THREADS],
)
def lock_excludes_threads_of_its_process(backend: object, case: Case) -> None:
    def body(attempt: lr.Attempt) -> None:
        out = case.run([Role("P", lr.two_threads, (attempt,))])
        first, second = out.value("P")
        h = out.history
        expect(not first, case.invariant.id, got="thread B took the lock thread A of the same process held",
               expected="False (A holds it)", call="acquire", history=h.format(h.of("P")))
        expect(second, case.invariant.id, got="thread B could not take the lock A released", expected="True",
               call="acquire", history=h.format(h.of("P")))

    case.explore(body, scale=0.25, attempt=attempts(case))
