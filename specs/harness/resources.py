"""Everything an example creates is named unguessably, created private, and removed.

Layout on disk: one *root* directory per process that runs examples
(``<base>/ipcc-<random>``, mode 0700; see :func:`scratch_bases` for the base), holding

* ``owner``    the pid of the process that owns the root;
* ``journal``  one line per named kernel object (``posix_mq /ipcc…``), so that a
  later run can remove what a crashed or SIGKILLed run left behind;
* ``ex-*``     one private directory per example (FIFOs, socket files, results).

Kernel objects that live outside the root (POSIX and System V objects) are
registered with a cleanup function and journalled.  At the end of an example,
at the end of the session, on KeyboardInterrupt/SIGTERM and, for debris, at
the start of the next session, everything registered is removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

ROOT_PREFIX = "ipcc-"
#: Name prefix of every kernel object the suite creates (POSIX names, SysV debris scans).
NAME_PREFIX = "ipcc"

Remover = Callable[[str], None]
_REMOVERS: Dict[str, Remover] = {}


def register_remover(kind: str, remover: Remover) -> None:
    """Teach the journal how to remove objects of ``kind`` given the journalled ident."""
    _REMOVERS[kind] = remover


def unguessable_name(tag: str = "") -> str:
    """A name with 128 random bits, e.g. ``ipcc_gw0_3f9a…``; ``tag`` keeps xdist workers apart."""
    tag = tag or worker_tag()
    return f"{NAME_PREFIX}_{tag}_{secrets.token_hex(16)}"


RUN_TAG_ENV = "IPCC_RUN_TAG"


def worker_tag() -> str:
    """A tag unique to this run and this pytest-xdist worker, part of every name.

    ``gw0`` alone is not enough: two runs on one machine (a developer's and CI's,
    or two tox environments) both have a ``gw0``, and the leak audit of one would
    take the other's objects for its own.  The tag is made once per worker and
    kept in the environment, so processes forked or spawned from it share it.
    A tag set from outside (``IPCC_RUN_TAG``, as the soak script does) is kept,
    with the xdist worker id appended, since workers inherit the controller's.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    tag = os.environ.get(RUN_TAG_ENV, "")
    if not tag:
        tag = f"{worker or 'main'}{secrets.token_hex(4)}"
    elif worker and worker not in tag:
        tag = f"{tag}{worker}"
    os.environ[RUN_TAG_ENV] = tag
    return tag


def tag_key_base(tag: str) -> int:
    """System V keys a run may mark its own objects with: ``base | n`` for n < 2**16.  A
    System V object has no name to carry a run's tag; a key derived from it does the
    same for a neighbour's leak audit (see ``named.py``)."""
    return (zlib.crc32(tag.encode()) & 0x7FFF) << 16


@dataclass
class Scope:
    """What one example may create; handed to ``backend.setup``.

    ``directory`` is private (0700) and removed with everything in it.  Named
    objects outside it must be passed to :meth:`register` right after creation.
    """

    directory: str
    _root: ResourceRoot
    _cleanups: List[Tuple[str, str, Callable[[], None]]] = field(default_factory=list)
    #: How the example's workers start ("fork", "spawn", "forkserver"): a ``process-arg``
    #: backend makes its multiprocessing objects with ``multiprocessing.get_context(this)``,
    #: since multiprocessing shares an object only with processes of the context that made it.
    start_method: str = "fork"

    def path(self, stem: str) -> str:
        """A fresh path inside the private directory (nothing is created)."""
        return os.path.join(self.directory, f"{stem}-{secrets.token_hex(4)}")

    def name(self, tag: str = "") -> str:
        return unguessable_name(tag)

    def register(self, kind: str, ident: str, cleanup: Callable[[], None]) -> None:
        """Record a named object; ``cleanup`` must tolerate the object being gone."""
        self._root.journal_add(kind, ident)
        self._cleanups.append((kind, ident, cleanup))

    def close(self) -> List[str]:
        """Remove everything; returns what could not be removed, as text."""
        problems: List[str] = []
        for kind, ident, cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:  # cleanup must go on for the rest
                problems.append(f"{kind} {ident}: {exc!r}")
            else:
                self._root.journal_remove(kind, ident)
        self._cleanups.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
        return problems


SCRATCH_ENV = "IPCC_TMPDIR"
SHM_BASE = "/dev/shm"
#: Below this much free space a tmpfs is too small to hold examples (Docker's default /dev/shm is 64 MiB).
MIN_TMPFS_FREE = 1 << 30


def scratch_bases() -> List[str]:
    """Where roots are made, preferred first: ``$IPCC_TMPDIR``, else a roomy /dev/shm, else ``$TMPDIR``.

    Every example creates a handful of files (histories, results, FIFOs).  On a
    disk file system each creation can cost a third of a millisecond, which
    would be most of the harness's overhead; on tmpfs it costs microseconds.
    """
    chosen = os.environ.get(SCRATCH_ENV)
    if chosen:
        return [chosen]
    bases = []
    try:
        st = os.statvfs(SHM_BASE)
        if os.access(SHM_BASE, os.W_OK | os.X_OK) and st.f_bavail * st.f_frsize >= MIN_TMPFS_FREE:
            bases.append(SHM_BASE)
    except OSError:
        pass
    return bases + [tempfile.gettempdir()]


def _new_root(parent: Optional[str] = None) -> str:
    """A fresh private directory owned by this process, which :func:`sweep_debris` removes once the owner is gone."""
    path = tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=parent or scratch_bases()[0])  # 0700, random name
    with open(os.path.join(path, "owner"), "w") as f:
        f.write(str(os.getpid()))
    return path


#: The longest AF_UNIX path Linux takes (sun_path is 108 bytes with its NUL), and the room
#: multiprocessing needs in its temp dir for a socket name ("/listener-" and 8 characters).
_UNIX_PATH_MAX = 107
_MP_SOCKET_ROOM = 20


def adopt_multiprocessing_tempdir() -> Optional[str]:
    """Give multiprocessing a temp dir that the debris sweep knows; returns it, or None if left alone.

    multiprocessing makes ``$TMPDIR/pymp-*`` the first time it needs one (the
    forkserver's listening socket lives there) and removes it at interpreter exit.
    A process killed outright leaves it, with nothing to say whose it is.  A root
    of our own instead carries this pid as its owner, so the next sweep removes it.
    Left alone when multiprocessing already has one, or when the base path is too
    long for a socket inside it.
    """
    import multiprocessing.process
    import multiprocessing.util

    config = getattr(multiprocessing.process.current_process(), "_config", None)
    if not isinstance(config, dict) or config.get("tempdir") is not None:
        return None
    parent = scratch_bases()[0]
    if len(parent) + 1 + len(ROOT_PREFIX) + 8 + _MP_SOCKET_ROOM > _UNIX_PATH_MAX:
        return None
    path = _new_root(parent)
    config["tempdir"] = path
    # Removed where multiprocessing would have removed its own: late at interpreter exit.
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(path, True), exitpriority=-100)
    return path


class ResourceRoot:
    """The private directory and journal of one process that runs examples."""

    def __init__(self, parent: Optional[str] = None) -> None:
        self.path = _new_root(parent)
        self._journal = os.path.join(self.path, "journal")
        self._live: Dict[Tuple[str, str], None] = {}
        self._scopes: List[Scope] = []

    def scope(self) -> Scope:
        directory = tempfile.mkdtemp(prefix="ex-", dir=self.path)
        scope = Scope(directory, self)
        self._scopes.append(scope)
        return scope

    def release(self, scope: Scope) -> List[str]:
        if scope in self._scopes:
            self._scopes.remove(scope)
        return scope.close()

    def journal_add(self, kind: str, ident: str) -> None:
        self._live[(kind, ident)] = None
        # Appended before use: a SIGKILL after this line still leaves a trace to clean.
        with open(self._journal, "a") as f:
            f.write(f"{kind} {ident}\n")

    def journal_entries(self) -> frozenset[str]:
        """The named objects currently registered and not yet removed, as ``"kind ident"``."""
        return frozenset(f"{k} {i}" for k, i in self._live)

    def journal_remove(self, kind: str, ident: str) -> None:
        self._live.pop((kind, ident), None)
        self._rewrite_journal()

    def _rewrite_journal(self) -> None:
        tmp = self._journal + ".new"
        with open(tmp, "w") as f:
            f.writelines(f"{k} {i}\n" for k, i in self._live)
        os.replace(tmp, self._journal)

    def close(self) -> List[str]:
        """Release every open scope and remove the root; idempotent."""
        problems: List[str] = []
        for scope in list(self._scopes):
            problems += self.release(scope)
        problems += remove_journalled(self._journal)
        shutil.rmtree(self.path, ignore_errors=True)
        return problems


def remove_journalled(journal: str) -> List[str]:
    """Remove every object listed in a journal file; returns what failed."""
    problems: List[str] = []
    try:
        with open(journal) as f:
            lines = [line.split(" ", 1) for line in f.read().splitlines() if " " in line]
    except FileNotFoundError:
        return problems
    for kind, ident in lines:
        remover = _REMOVERS.get(kind)
        if remover is None:
            problems.append(f"{kind} {ident}: no remover registered for this kind")
            continue
        try:
            remover(ident)
        except Exception as exc:
            problems.append(f"{kind} {ident}: {exc!r}")
    return problems


#: A root-like directory without an owner file is swept only when it is at least this old.
ORPHAN_AGE_S = 3600.0


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its parent, as a killed
    pytest-xdist worker can be when the run ends) no longer uses its root."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def sweep_debris(parent: Optional[str] = None) -> List[str]:
    """Remove roots (and their journalled objects) whose owner process is dead.

    Returns one line per root removed, for the report header: a crashed or
    SIGKILLed run cannot clean up after itself, so the next one does.  Without
    ``parent``, every base a root may have been made in is swept.
    """
    if parent is None:
        return [line for base in dict.fromkeys(scratch_bases() + [SHM_BASE]) for line in sweep_debris(base)]
    removed: List[str] = []
    try:
        entries = os.listdir(parent)
    except OSError:
        return removed
    for entry in entries:
        root = os.path.join(parent, entry)
        if not entry.startswith(ROOT_PREFIX) or os.path.islink(root) or not os.path.isdir(root):
            continue
        try:
            st = os.stat(root)
        except OSError:
            continue  # gone meanwhile
        if st.st_uid != os.getuid():
            continue
        try:
            with open(os.path.join(root, "owner")) as f:
                owner = int(f.read().strip() or "0")
        except (OSError, ValueError):
            # No owner yet: a root being made this instant (mkdtemp, then "owner"), or
            # not a root at all.  Only a stale one is debris.
            if time.time() - st.st_mtime < ORPHAN_AGE_S:
                continue
            owner = 0
        if owner and _pid_alive(owner):
            continue
        problems = remove_journalled(os.path.join(root, "journal"))
        for nested in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            if nested.startswith(ROOT_PREFIX):  # a probe's root (see probe.py), inside its parent's
                problems += remove_journalled(os.path.join(root, nested, "journal"))
        shutil.rmtree(root, ignore_errors=True)
        removed.append(f"{root} (owner pid {owner or '?'} gone)" + (f"; {problems}" if problems else ""))
    return removed
