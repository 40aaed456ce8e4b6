"""Secure defaults, checked on every reference backend.

* whatever a backend's ``setup`` creates is private: files, FIFOs and POSIX
  objects 0600 (no group or other bits), directories 0700, socket files only
  inside such directories, System V objects 0600;
* internet sockets are bound and connected on loopback only;
* a symlink or an object planted at the very name a backend is about to create
  makes ``setup`` fail: it never follows the link nor adopts the object.

The planted-name test makes names predictable by fixing ``secrets.token_hex``
for the duration of the test, creates the objects the backend will ask for,
and checks that the plant is untouched afterwards.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, Set, Tuple

import pytest

from ipc_impls import reference_backends
from ipc_specs import Unresolved, Unsupported
from ipc_specs.harness import resources
from ipc_specs.harness.audit import open_fds
from ipc_specs.harness.resources import ResourceRoot, Scope

BACKENDS = reference_backends()
POSIX_DIRS = [d for d in ("/dev/shm", "/dev/mqueue") if os.path.isdir(d)]
LOOPBACK = {"127.0.0.1", "::1"}


@pytest.fixture
def root() -> Iterator[ResourceRoot]:
    r = ResourceRoot()
    yield r
    assert r.close() == []


def _posix_entries() -> Set[str]:
    return {os.path.join(d, e) for d in POSIX_DIRS for e in os.listdir(d) if resources.worker_tag() in e}


def _sysv_perms() -> Dict[Tuple[str, str], int]:
    found = {}
    for table in ("msg", "sem", "shm"):
        try:
            with open(f"/proc/sysvipc/{table}") as f:
                rows = [r.split() for r in f.read().splitlines()[1:] if r.split()]
        except OSError:
            continue
        found.update({(table, r[1]): int(r[2], 8) for r in rows})
    return found


def _setup(backend: Any, scope: Scope) -> Any:
    try:
        return backend.setup(scope)
    except (Unresolved, Unsupported) as exc:
        pytest.skip(f"{backend.name}: {exc}")


def _close(channel: Any) -> None:
    if channel is not None and callable(getattr(channel, "teardown", None)):
        channel.teardown()


def _private_problems(directory: str) -> List[str]:
    problems = []
    for base, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{path} is a symlink")
            elif stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o700:
                problems.append(f"directory {path} has mode {oct(stat.S_IMODE(st.st_mode))}")
            elif not stat.S_ISSOCK(st.st_mode) and not stat.S_ISDIR(st.st_mode) and st.st_mode & 0o077:
                problems.append(f"{path} has mode {oct(stat.S_IMODE(st.st_mode))}")
    return problems


def _socket_addresses(fds: FrozenSet[int]) -> List[Tuple[str, Any]]:
    found = []
    for fd in fds:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            with socket.socket(fileno=os.dup(fd)) as s:
                if s.family in (socket.AF_INET, socket.AF_INET6):
                    found.append(("bound", s.getsockname()[0]))
                    try:
                        found.append(("peer", s.getpeername()[0]))
                    except OSError:
                        pass  # a listener has no peer
        except OSError:
            continue
    return found


@pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])
def test_setup_creates_only_private_objects_and_loopback_sockets(backend: Any, root: ResourceRoot) -> None:
    scope = root.scope()
    assert stat.S_IMODE(os.stat(scope.directory).st_mode) == 0o700
    fds, posix, sysv = open_fds(), _posix_entries(), _sysv_perms()
    channel = _setup(backend, scope)
    try:
        problems = _private_problems(scope.directory)
        for path in _posix_entries() - posix:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                problems.append(f"{path} has mode {oct(mode)}")
        for key, perms in _sysv_perms().items():
            if key not in sysv and perms & 0o077:
                problems.append(f"System V {key[0]} id {key[1]} has mode {oct(perms)}")
        for what, host in _socket_addresses(open_fds() - fds):
            if host not in LOOPBACK:
                problems.append(f"an internet socket is {what} to {host}, not loopback")
        assert problems == []
    finally:
        _close(channel)
        root.release(scope)


class _Fixed:
    """``secrets.token_hex`` with the randomness taken out: the same token every call."""

    def __call__(self, nbytes: int = 16) -> str:
        return "5a" * nbytes


def _names_asked(backend: Any, root: ResourceRoot, monkeypatch: pytest.MonkeyPatch) -> Tuple[List[str], List[str]]:
    """The names ``setup`` asks its scope for: (``scope.path`` basenames, ``scope.name`` names)."""
    paths: List[str] = []
    names: List[str] = []
    path, name = Scope.path, Scope.name

    def recording_path(self: Scope, stem: str) -> str:
        paths.append(os.path.basename(path(self, stem)))
        return os.path.join(self.directory, paths[-1])

    def recording_name(self: Scope, tag: str = "") -> str:
        names.append(name(self, tag))
        return names[-1]

    monkeypatch.setattr(Scope, "path", recording_path)
    monkeypatch.setattr(Scope, "name", recording_name)
    scope = root.scope()
    channel = _setup(backend, scope)
    _create(backend, channel)
    _close(channel)
    root.release(scope)
    return paths, names


#: Channels that create their object on demand, not in ``setup``: the argument ``create`` takes.
CREATE_ARG = {"shm": 4096, "semaphore": 1}


def _create(backend: Any, channel: Any) -> None:
    if backend.kind in CREATE_ARG and callable(getattr(channel, "create", None)):
        channel.create(CREATE_ARG[backend.kind])
    elif backend.kind == "arrow":  # Arrow stores create their segment with the first put
        import pyarrow

        writer = channel.open_writer()
        try:
            writer.put(pyarrow.table({"x": [1]}))
        finally:
            writer.close()


def _plant_queue(name: str) -> Any:
    """Someone's POSIX message queue at ``name`` (mqueue is not a mounted directory here)."""
    posix_ipc = pytest.importorskip("posix_ipc")
    return posix_ipc.MessageQueue(name if name.startswith("/") else "/" + name, posix_ipc.O_CREX, mode=0o600)


#: Where a POSIX object named ``n`` lives on Linux: shm_overview(7), sem_overview(7).
POSIX_HOMES = ("/dev/shm/{}", "/dev/shm/sem.{}")


@pytest.mark.parametrize("backend", BACKENDS, ids=[b.name for b in BACKENDS])
def test_an_object_planted_at_the_name_makes_setup_fail_safely(backend: Any, root: ResourceRoot,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources.secrets, "token_hex", _Fixed())
    paths, names = _names_asked(backend, root, monkeypatch)
    if not paths and not names:
        pytest.skip(f"{backend.name} names nothing: its objects are anonymous or keyed at random")
    precious = tmp_path / "precious"
    precious.write_bytes(b"not yours")
    scope = root.scope()
    for p in paths:  # a symlink to someone's file where the backend expects a fresh path
        os.symlink(precious, os.path.join(scope.directory, p))
    foreign = [home.format(n.lstrip("/")) for n in names for home in POSIX_HOMES]
    for f in foreign:  # someone's object already at the name
        with open(f, "xb") as out:
            out.write(b"not yours")
    queues = [_plant_queue(n) for n in names] if backend.kind == "queue" else []
    channel = None
    try:
        with pytest.raises(Exception):  # noqa: B017 - any refusal is safe; adopting the plant is not
            channel = backend.setup(scope)
            _create(backend, channel)
    finally:
        _close(channel)
        adopted = []
        for f in foreign:
            # The channel's teardown may have removed the name it was given (it cannot
            # know that creation failed in some worker); it must never have written to it.
            if os.path.exists(f):
                with open(f, "rb") as got:
                    if got.read() != b"not yours":
                        adopted.append(f)
                os.unlink(f)
        for mq in queues:
            if mq.current_messages:
                adopted.append(mq.name)
            mq.close()
            try:
                mq.unlink()
            except Exception:
                pass  # the channel's teardown removed the name
        root.release(scope)
    assert adopted == [], f"{backend.name} wrote into planted objects"
    assert precious.read_bytes() == b"not yours"
