"""Leak audit of objects under names the backend chose: not the suite's tagged names.

A backend may create kernel objects the suite never names: a POSIX semaphore
(``sem.<name>`` in /dev/shm), a shared memory object in /dev/shm, a POSIX message
queue (in the mqueue file system, when one is mounted at /dev/mqueue), a System V
segment, semaphore set or message queue.  The audit lists them before and after each
test and reports what appeared and persisted.

Other processes create such objects too, meanwhile: other runs of the suite, other
pytest-xdist workers of this one, anything of this user.  An object counts against
the backend only if

* its name does not carry the suite's prefix (every run's tagged names and roots are
  the journal's business);
* it is still there after a short settle (:data:`SETTLE_S`), so a neighbour's
  object that lives for one example is not taken for a leak;
* it belongs to this user, and no process outside this one's tree holds it: maps
  or opens it (/proc/*/maps, /proc/*/fd), created it or used it last (System V:
  ``cpid``/``lpid`` of segments, ``lspid``/``lrpid`` of queues, ``sempid`` of sets);
* it is in no journal of a live run of the suite (System V objects have no name).

What is left may still be a foreign process's (one of this user's, that created it and
let go meanwhile), so the audit removes only what it knows is the backend's: a System
V segment created by this very process (``setup`` runs here).  Everything else is
reported and left in place, with the command that removes it.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import os
import time
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, List, Optional, Set, Tuple

from .resources import NAME_PREFIX, RUN_TAG_ENV, SHM_BASE, scratch_bases, tag_key_base, worker_tag

MQUEUE_BASE = "/dev/mqueue"
#: How long a candidate must outlive the end of the test to count: a neighbour's
#: example-long object is gone by then.  Paid only when something new is there.
SETTLE_S = 0.25
SYSV_TABLES = ("shm", "sem", "msg")
_SYSV_NAMES = {"shm": "shared memory segment", "sem": "semaphore set", "msg": "message queue"}
_IPCRM = {"shm": "-m", "sem": "-s", "msg": "-q"}


@dataclass(frozen=True)
class Seen:
    """One object in a listing: ``where`` is a directory (/dev/shm, /dev/mqueue) or
    ``sysv:<table>``; ``ident`` its file name or System V id; ``stamp`` its inode or
    key, so that a name removed and made again is a new object."""

    where: str
    ident: str
    stamp: int


def mqueue_mounted() -> bool:
    """True when an mqueue file system is mounted at /dev/mqueue (mq_overview(7))."""
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1:3] == [MQUEUE_BASE, "mqueue"] for line in f if len(line.split()) > 2)
    except OSError:
        return False


_MQUEUE: Optional[bool] = None


def unaudited() -> List[str]:
    """What this machine lets the audit not see, one phrase each, for the report header."""
    global _MQUEUE
    if _MQUEUE is None:
        _MQUEUE = mqueue_mounted()
    return [] if _MQUEUE else [f"POSIX message queues (no mqueue file system mounted at {MQUEUE_BASE})"]


def snapshot(sysv: bool = True) -> FrozenSet[Seen]:
    """Every object in /dev/shm, /dev/mqueue (if mounted) and the System V tables."""
    found: Set[Seen] = set()
    for base in (SHM_BASE,) + ((MQUEUE_BASE,) if not unaudited() else ()):
        try:
            with os.scandir(base) as entries:
                found.update(Seen(base, e.name, e.inode()) for e in entries if not _suite_named(e.name))
        except OSError:
            pass
    if sysv:
        for table in SYSV_TABLES:
            for row in _sysv_rows(table):
                found.add(Seen(f"sysv:{table}", row["id"], int(row["key"])))
    return frozenset(found)


def _suite_named(name: str) -> bool:
    """A root of a run, or an object the suite named (``ipcc_<tag>_…``, ``sem.ipcc_<tag>_…``)."""
    return name.startswith(NAME_PREFIX) or name.startswith(f"sem.{NAME_PREFIX}")


def _sysv_rows(table: str) -> List[Dict[str, str]]:
    try:
        with open(f"/proc/sysvipc/{table}") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    header = lines[0].split() if lines else []
    rows = [dict(zip(header, line.split())) for line in lines[1:]]
    for row in rows:  # the id column is shmid, semid or msqid
        row["id"] = next((v for k, v in row.items() if k.endswith("id") and k != "uid" and k != "cuid"), "")
    return rows


@dataclass
class Finding:
    seen: Seen
    what: str  # "named semaphore /dev/shm/sem.x", "System V shared memory segment id 5 (key 0x0)"
    removable: bool  # certainly the backend's: the audit may remove it
    remove_hint: str


def appeared(before: FrozenSet[Seen], after: FrozenSet[Seen], *,
             journalled: Iterable[str] = ()) -> List[Finding]:
    """Objects in ``after`` but not ``before`` that persist and are nobody else's.

    The cheap tests come first: another run's or another worker's object (journalled,
    or used by a live process elsewhere) costs no settle, so a clean test stays fast
    while neighbours create objects all the time."""
    own = list(journalled)
    found = _judge(after - before, own)
    if not found:
        return []
    # An object whose Python owner is garbage in a reference cycle (a multiprocessing lock
    # of the spawn context unlinks its semaphore when collected) is not a leak.
    gc.collect()
    time.sleep(SETTLE_S)
    still = {f.seen for f in found} & snapshot(sysv=any(f.seen.where.startswith("sysv:") for f in found))
    return _judge(frozenset(still), own)


def _judge(new: FrozenSet[Seen], journalled: List[str]) -> List[Finding]:
    if not new:
        return []
    tree = _process_tree()
    sysv = [s for s in new if s.where.startswith("sysv:")]
    idents = _suite_journalled(journalled) if sysv else set()
    held = _held_outside({os.path.join(s.where, s.ident) for s in new if s not in sysv}, tree)
    foreign = _foreign_run_tags(tree)
    foreign_keys = {tag_key_base(tag) for tag in foreign}
    found: List[Finding] = []
    for seen in sorted(new, key=lambda s: (s.where, s.ident)):
        if ((seen.stamp & 0x7FFF0000) in foreign_keys) if seen in sysv else any(t in seen.ident for t in foreign):
            continue  # named (keyed) with another live run's tag: that run's audit judges it
        finding = _sysv_finding(seen, tree, idents) if seen in sysv else _file_finding(seen, held)
        if finding is not None:
            found.append(finding)
    return found


def _file_finding(seen: Seen, held: Set[str]) -> Optional[Finding]:
    path = os.path.join(seen.where, seen.ident)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if st.st_uid != os.geteuid() or path in held:
        return None
    if seen.where == MQUEUE_BASE:
        what = f"POSIX message queue /{seen.ident} ({path})"
    elif seen.ident.startswith("sem."):
        what = f"named POSIX semaphore /{seen.ident[4:]} ({path})"
    else:
        what = f"POSIX shared memory object or file {path}"
    return Finding(seen, what, False, f"rm {path}")


def _sysv_finding(seen: Seen, tree: Set[int], journalled: Set[str]) -> Optional[Finding]:
    table = seen.where.split(":", 1)[1]
    row = next((r for r in _sysv_rows(table) if r["id"] == seen.ident), None)
    if row is None or int(row.get("cuid", -1)) != os.geteuid():
        return None
    if seen.ident in journalled or (seen.stamp and str(seen.stamp) in journalled):
        return None  # the suite's own (a run's journal removes it)
    pids = [int(row.get(k, 0)) for k in ("cpid", "lpid", "lspid", "lrpid")]
    if table == "sem":
        pids.append(_sempid(int(seen.ident)))
    if any(p > 0 and p not in tree and _alive(p) for p in pids):
        return None
    creator = int(row.get("cpid", 0))
    mine = table == "shm" and creator == os.getpid()
    what = (f"System V {_SYSV_NAMES[table]} id {seen.ident} (key {seen.stamp:#x}"
            + (f", created by pid {creator}{' (this process)' if mine else ''}" if creator else "") + ")")
    return Finding(seen, what, mine, f"ipcrm {_IPCRM[table]} {seen.ident}")


def remove(finding: Finding) -> Optional[str]:
    """Remove an object the audit knows is the backend's; returns what went wrong, if anything."""
    if not finding.removable or finding.seen.where != "sysv:shm":
        return "not removable"
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.shmctl(int(finding.seen.ident), 0, None) != 0:  # IPC_RMID
        return os.strerror(ctypes.get_errno())
    return None


def describe(findings: List[Finding], removed: Dict[str, Optional[str]], shown: int = 5) -> List[str]:
    """At most two lines however many objects: those removed, and those left in place with
    the commands that remove them (a leak per example makes hundreds)."""
    gone = [f for f in findings if removed.get(f.what, "not removable") is None]
    left = [f for f in findings if f not in gone]
    lines = []
    if gone:
        lines.append(f"{_count(gone, 'object')} this process created, now removed: {_some(gone, shown)}")
    if left:
        lines.append(f"{_count(left, 'object')} under names the backend chose, left in place since each could be "
                     f"another process's (still there {SETTLE_S:g}s after the test, held by no other process): "
                     f"{_some(left, shown)}; remove with: "
                     + "; ".join(f.remove_hint for f in left[:shown]) + (" …" if len(left) > shown else ""))
    return lines


def _count(items: List[Finding], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _some(items: List[Finding], shown: int) -> str:
    return ", ".join(f.what for f in items[:shown]) + (f", … ({len(items)} in all)" if len(items) > shown else "")


def _sempid(semid: int) -> int:
    """The pid of the last semop(2) on semaphore 0 of a set (semctl GETPID), or 0."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pid = libc.semctl(semid, 0, 11)  # GETPID
        return int(pid) if pid > 0 else 0
    except (OSError, AttributeError):
        return 0


def _process_tree() -> Set[int]:
    """This process and its live descendants."""
    parents: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = {os.getpid()}
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in tree and pid not in tree}
        tree |= more
        grew = bool(more)
    return tree


def _alive(pid: int) -> bool:
    """Unlike ``resources._pid_alive``, a zombie counts as alive: its parent, outside this
    tree, has not reaped it yet, so what it created is still that neighbour's to clean up."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _held_outside(paths: Set[str], tree: Set[int]) -> Set[str]:
    """Those of ``paths`` that a process outside ``tree`` maps or opens (as far as /proc
    lets us see: other users' processes are not ours to look into).  By inode, not by
    name: glibc's sem_open creates a semaphore under a temporary name and links it, so
    its mapping shows that name, "(deleted)"."""
    wanted: Dict[Tuple[int, int], str] = {}
    for path in paths:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = path
    held: Set[str] = set()
    if not wanted:
        return held
    in_maps = {f"{os.major(dev):02x}:{os.minor(dev):02x} {ino}": path for (dev, ino), path in wanted.items()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in tree:
            continue
        try:
            with open(f"/proc/{entry}/maps") as f:
                for line in f:
                    fields = line.split(None, 5)
                    if len(fields) > 4:
                        found = in_maps.get(f"{fields[3]} {fields[4]}")
                        if found:
                            held.add(found)
            for fd in os.listdir(f"/proc/{entry}/fd"):
                st = os.stat(f"/proc/{entry}/fd/{fd}")
                if (st.st_dev, st.st_ino) in wanted:
                    held.add(wanted[(st.st_dev, st.st_ino)])
        except OSError:
            continue  # gone meanwhile, or another user's
    return held


def _foreign_run_tags(tree: Set[int]) -> Set[str]:
    """The run tags (``IPCC_RUN_TAG`` in the environment they started with) of this user's
    live processes outside this process's tree: a run that names objects with its own tag
    (the chaos gallery's leaking twins do, so that their self-test can find them) has them
    judged by its own audit, not by a neighbour's that happened to be running a test when
    they appeared.  Read from ``/proc/<pid>/environ`` (the start-up environment), and only
    when something new survived the cheaper tests."""
    own = worker_tag()
    prefix = RUN_TAG_ENV.encode() + b"="
    tags: Set[str] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in tree:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile, or another user's
        tags.update(e[len(prefix):].decode(errors="replace") for e in env if e.startswith(prefix))
    return {t for t in tags if len(t) >= 8 and t not in own and own not in t}


def _suite_journalled(own: Iterable[str]) -> Set[str]:
    """Idents of every object listed in the journals of suite runs this user can see
    (``kind ident`` lines), this run's own entries included."""
    idents = {entry.split(" ", 1)[1] for entry in own if " " in entry}
    for base in dict.fromkeys(scratch_bases() + [SHM_BASE]):
        for journal in glob.glob(os.path.join(base, "ipcc-*", "journal")) + \
                glob.glob(os.path.join(base, "ipcc-*", "ipcc-*", "journal")):
            try:
                with open(journal) as f:
                    idents.update(line.split(" ", 1)[1] for line in f.read().splitlines() if " " in line)
            except OSError:
                continue
    return idents
