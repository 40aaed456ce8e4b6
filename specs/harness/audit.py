"""Leak audit: what a check left behind in the process that ran it, and on the machine.

Taken before and after every conformance test, a :class:`Snapshot` records

* the test process's open file descriptors, its child processes and zombies;
* every signal disposition, the signal mask and any pending ITIMER_REAL alarm;
* the entries in /dev/shm whose names carry this worker's tag (POSIX shared
  memory and semaphores named by the suite);
* the kernel objects still listed in the session's journal;
* every other object in /dev/shm, /dev/mqueue and the System V tables: those a
  backend made under names of its own, told apart from other processes' (see
  ``named.py``).  With ``IPC_AUDIT_SYSV=1`` (the caller vouches that nothing else
  creates System V objects) every new System V object is reported, unattributed.

:func:`leaks` lists what is new, one line per object, and :func:`clean`
removes what can be removed so the next test starts clean.
"""

from __future__ import annotations

import fcntl
import os
import signal
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Set, Tuple

from . import named as named_objects
from .resources import NAME_PREFIX, worker_tag

SYSV_TABLES = ("msg", "sem", "shm")
#: System V objects carry no name to attribute them by, so their diff is only
#: meaningful when nothing else on the machine creates any: set this to "1" then.
#: (.ci/run compares ipcs before and after the whole run instead.)
SYSV_AUDIT_ENV = "IPC_AUDIT_SYSV"


@dataclass(frozen=True)
class Snapshot:
    fds: FrozenSet[int]
    children: FrozenSet[int]
    zombies: FrozenSet[int]
    handlers: Tuple[Tuple[int, Any], ...]
    mask: FrozenSet[int]
    alarm: Tuple[float, float]
    shm: FrozenSet[str]
    sysv: FrozenSet[Tuple[str, str]]
    journal: FrozenSet[str] = field(default_factory=frozenset)
    #: Every object in /dev/shm, /dev/mqueue and the System V tables, whoever named it.
    named: FrozenSet[named_objects.Seen] = field(default_factory=frozenset)


def open_fds() -> FrozenSet[int]:
    """This process's open descriptors.

    Listing /proc/self/fd opens a descriptor of its own, which appears in the
    listing and is closed by the time we look: keep only those still open.
    """
    try:
        listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return frozenset()
    still_open = set()
    for fd in listed:
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            continue
        still_open.add(fd)
    return frozenset(still_open)


def _children() -> Tuple[FrozenSet[int], FrozenSet[int]]:
    me, kids, zombies = os.getpid(), set(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == me:
            kids.add(int(entry))
            if fields[0] == "Z":
                zombies.add(int(entry))
    return frozenset(kids), frozenset(zombies)


def _handlers() -> Tuple[Tuple[int, Any], ...]:
    out = []
    for sig in range(1, signal.NSIG):
        try:
            out.append((sig, signal.getsignal(sig)))
        except (ValueError, OSError):
            continue
    return tuple(out)


def _shm() -> FrozenSet[str]:
    mark = f"{NAME_PREFIX}_{worker_tag()}_"
    try:
        return frozenset(e for e in os.listdir("/dev/shm") if mark in e)
    except OSError:
        return frozenset()


def _sysv() -> FrozenSet[Tuple[str, str]]:
    found: Set[Tuple[str, str]] = set()
    for table in SYSV_TABLES:
        try:
            with open(f"/proc/sysvipc/{table}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        found.update((table, row.split()[1]) for row in rows if len(row.split()) > 1)  # (table, id)
    return frozenset(found)


def take(journal: FrozenSet[str] = frozenset()) -> Snapshot:
    children, zombies = _children()
    mask = frozenset(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    return Snapshot(fds=open_fds(), children=children, zombies=zombies, handlers=_handlers(), mask=mask,
                    alarm=signal.getitimer(signal.ITIMER_REAL), shm=_shm(), sysv=_sysv(), journal=journal,
                    named=named_objects.snapshot(sysv=os.environ.get(SYSV_AUDIT_ENV) != "1"))


def leaks(before: Snapshot, after: Snapshot, *, ignore_children: FrozenSet[int] = frozenset(),
          ignore_fds: FrozenSet[int] = frozenset()) -> List[str]:
    """What ``after`` has that ``before`` did not, one readable line per object."""
    found: List[str] = []
    by_target: Dict[str, List[int]] = {}
    for fd in sorted(after.fds - before.fds - ignore_fds):
        by_target.setdefault(_describe_fd(fd), []).append(fd)
    for target, fds in by_target.items():  # one line per file: a leak per example makes many
        numbers = ", ".join(map(str, fds[:5])) + (f", … ({len(fds)} in all)" if len(fds) > 5 else "")
        found.append(f"file descriptor{'s' if len(fds) > 1 else ''} {numbers} -> {target}")
    for pid in sorted(after.children - before.children - ignore_children):
        state = "zombie" if pid in after.zombies else "running"
        found.append(f"child process {pid} ({state})")
    old = dict(before.handlers)
    for sig, handler in after.handlers:
        if old.get(sig) != handler:
            found.append(f"handler of {signal.Signals(sig).name} changed to {handler!r}")
    for sig in sorted(after.mask - before.mask):
        found.append(f"{signal.Signals(sig).name} left blocked in the signal mask")
    if after.alarm[0] > 0 and before.alarm[0] == 0:
        found.append(f"an alarm is pending (ITIMER_REAL {after.alarm})")
    found += [f"/dev/shm/{name}" for name in sorted(after.shm - before.shm)]
    found += [f"journalled object {entry} not removed" for entry in sorted(after.journal - before.journal)]
    if os.environ.get(SYSV_AUDIT_ENV) == "1":  # the caller vouches nothing else uses the tables
        found += [f"System V {table} id {ident}" for table, ident in sorted(after.sysv - before.sysv)]
    return found + _named_leaks(before, after)


def _named_leaks(before: Snapshot, after: Snapshot) -> List[str]:
    """Objects under names the backend chose that appeared and persisted.  The ones known
    to be the backend's are removed here, where the settle that told them apart was paid."""
    findings = named_objects.appeared(before.named, after.named, journalled=before.journal | after.journal)
    removed = {f.what: named_objects.remove(f) for f in findings if f.removable}
    return named_objects.describe(findings, removed)


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def clean(before: Snapshot, after: Snapshot, *, ignore_children: FrozenSet[int] = frozenset(),
          ignore_fds: FrozenSet[int] = frozenset()) -> Dict[str, str]:
    """Undo what can be undone (kill and reap children, restore signal state, unlink
    /dev/shm entries); returns what could not be undone.

    Descriptors are reported, never closed: a Python object that still owns one
    would close the number again later, by then perhaps someone else's file.
    """
    problems: Dict[str, str] = {}
    for pid in after.children - before.children - ignore_children:
        _try(problems, f"pid {pid}", os.kill, pid, signal.SIGKILL)
        _try(problems, f"reap {pid}", os.waitpid, pid, 0)
    old = dict(before.handlers)
    for sig, handler in after.handlers:
        if old.get(sig) != handler and old.get(sig) is not None:
            _try(problems, f"signal {sig}", signal.signal, sig, old[sig])
    signal.pthread_sigmask(signal.SIG_SETMASK, before.mask)
    if before.alarm[0] == 0:
        signal.setitimer(signal.ITIMER_REAL, 0)
    for name in after.shm - before.shm:
        _try(problems, name, os.unlink, os.path.join("/dev/shm", name))
    return problems


def _try(problems: Dict[str, str], what: str, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except (OSError, ValueError, TypeError) as exc:
        problems[what] = repr(exc)


#: multiprocessing.heap.Arena's file name prefix (tempfile.mkstemp(prefix="pym-<pid>-")).
SHM_HEAP_PREFIX = "/dev/shm/pym-"


def _heap_arena_fds() -> Set[int]:
    """Descriptors of multiprocessing's shared heap (``Value``, ``Array``, ``RawArray``).

    Each arena is an unlinked ``/dev/shm/pym-<pid>-*`` file, held open twice (the arena's
    descriptor and mmap's dup of it).  The heap keeps arenas for reuse once their objects
    are freed, and closes a discarded one only when the garbage collector gets to it: a
    backend built on them leaks nothing of its own.  Only multiprocessing.heap makes
    files by that name.
    """
    mark = f"{SHM_HEAP_PREFIX}{os.getpid()}-"
    return {fd for fd in open_fds() if _describe_fd(fd).startswith(mark)}


def infrastructure() -> Tuple[FrozenSet[int], FrozenSet[int]]:
    """Pids and fds of long-lived helpers that multiprocessing starts on first use
    (the resource tracker, the forkserver, the shared heap's arenas): kept on purpose,
    not leaks."""
    pids: Set[int] = set()
    fds: Set[int] = set()
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        pids.update(p for p in (getattr(tracker, "_pid", None),) if p)
        fds.update(f for f in (getattr(tracker, "_fd", None),) if f is not None)
    except (ImportError, AttributeError):
        pass
    fds.update(_heap_arena_fds())
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        pids.update(p for p in (getattr(server, "_forkserver_pid", None),) if p)
        fds.update(f for f in (getattr(server, "_forkserver_alive_fd", None),) if f is not None)
    except (ImportError, AttributeError):
        pass
    return frozenset(pids), frozenset(fds)
