"""Reference timeouts of the call form: ``run(seconds, fn, *args, **kwargs)``.

Three shapes, as libraries ship them, each claiming only what it does:

* :class:`ItimerCalls`, a decorator on the SIGALRM scopes of :mod:`ipc_impls.timeouts`:
  ``fn`` runs in the caller's thread and is interrupted where it is.
* :class:`ThreadCalls`, a thread executor (``Future.result(timeout)`` style): the caller is
  released at the deadline, but a running thread cannot be stopped (Python docs,
  concurrent.futures, paraphrased: ``cancel()`` fails for a call that is running), so
  ``fn`` is abandoned, not stopped; it does not claim ``stops_guarded_code``.
* :class:`ForkCalls`, a process executor: ``fn`` runs in a forked child that leads its
  own process group; at the deadline the whole group is SIGKILLed (the Python docs of
  ``multiprocessing`` say, paraphrased, that ``Process.terminate`` leaves descendants
  running), and the child is reaped before the caller is released.

None of them offers a ``with`` scope (``call_only``).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import threading
import time
from io import BytesIO
from typing import Any, Callable, Dict, FrozenSet, List, Tuple

from ipc_specs.harness.resources import Scope
from ipc_specs.harness.worker import die_with_parent
from ipc_specs.timeouts import protocol as p

from .timeouts import ItimerTimeouts, TimeoutChannel


class ItimerCalls:
    """``run()`` as a ``with`` scope of the nesting-aware itimer reference around ``fn``."""

    def __init__(self) -> None:
        self.scopes = ItimerTimeouts()

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.scopes.timeout(seconds):
            return fn(*args, **kwargs)


class ThreadCalls:
    """``fn`` in a daemon thread; at the deadline the caller gets TimeoutError and the
    thread is left to finish on its own (abandoned: no Python API stops a thread)."""

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        box, done = self.start(fn, *args, **kwargs)
        if not done.wait(seconds):
            raise TimeoutError(f"timeout of {seconds:g} s expired (the call goes on in its thread)")
        return self.outcome(box)

    @staticmethod
    def start(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Tuple[Dict[str, Any], threading.Event]:
        """``fn`` running in a daemon thread: the box its value or exception will be in,
        and the event set when it is."""
        box: Dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: B902  (handed to the caller unchanged)
                box["exc"] = exc
            finally:
                done.set()

        threading.Thread(target=target, daemon=True).start()
        return box, done

    @staticmethod
    def outcome(box: Dict[str, Any]) -> Any:
        """What ``fn`` returned, or what it raised, raised again unchanged."""
        if "exc" in box:
            raise box["exc"]
        return box["value"]


class ForkCalls:
    """``fn`` in a forked child leading its own process group; killed with its group.

    A nested run() in that child makes a group of its own for its child, which dies with
    its parent (PR_SET_PDEATHSIG): killing the outer group ends every nested call too.
    (What a nested call's fn starts itself is then left to its own group: not handled.)"""

    def run(self, seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + seconds
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (runs in the child)
            os.close(r)
            self._child(w, fn, args, kwargs)
        os.close(w)
        try:
            os.setpgid(pid, pid)  # here too, so a kill at once cannot miss the group
        except OSError:
            pass  # the child did it already, or has exited
        try:
            data, complete = _read_until(r, deadline)
        finally:
            os.close(r)
        if not complete:
            self._kill(pid)
            raise TimeoutError(f"timeout of {seconds:g} s expired (its process group was killed)")
        os.waitpid(pid, 0)
        if not data:
            raise RuntimeError("the process running fn ended without a result")
        status, value = _Unpickler(BytesIO(data)).load()
        if status == "raised":
            raise value
        return value

    def _child(self, w: int, fn: Callable[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        try:
            os.setpgid(0, 0)
            die_with_parent()
            try:
                outcome: Tuple[str, Any] = ("returned", fn(*args, **kwargs))
            except BaseException as exc:  # noqa: B902  (SystemExit, KeyboardInterrupt: the caller's to see)
                outcome = ("raised", exc)
            _write_all(w, _dumps(outcome))
        finally:
            os._exit(0)

    def _kill(self, pid: int) -> None:
        for target, kill in ((pid, os.killpg), (pid, os.kill)):
            try:
                kill(target, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)


def _read_until(fd: int, deadline: float) -> Tuple[bytes, bool]:
    """Everything written to ``fd`` until EOF (complete) or the deadline (not)."""
    chunks: List[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Pickler(pickle.Pickler):
    """Pickles a class that cannot be found by name (defined at run time, say in
    ``__main__``) as its identity: the forked parent holds the very same class object."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and not _findable(obj):
            return _same_class, (id(obj), obj.__qualname__)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    pass


def _findable(cls: type) -> bool:
    found: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is cls


def _same_class(ident: int, qualname: str) -> type:
    """The class with this id, which existed before the fork (parent and child share it)."""
    todo, seen = [object], set()
    while todo:
        cls = todo.pop()
        if id(cls) == ident and cls.__qualname__ == qualname:
            return cls
        for sub in type.__subclasses__(cls):
            if id(sub) not in seen:
                seen.add(id(sub))
                todo.append(sub)
    raise pickle.UnpicklingError(f"class {qualname} was defined after the fork")


def _dumps(outcome: Tuple[str, Any]) -> bytes:
    buf = BytesIO()
    try:
        _Pickler(buf, pickle.HIGHEST_PROTOCOL).dump(outcome)
    except Exception as exc:  # an unpicklable result: say so, as the caller's exception
        buf = BytesIO()
        _Pickler(buf, pickle.HIGHEST_PROTOCOL).dump(("raised", RuntimeError(f"fn's outcome cannot be sent: {exc!r}")))
    return buf.getvalue()


class CallsBackend:
    kind = "timeout"
    wiring = "inherit"

    def __init__(self, name: str, factory: type, capabilities: FrozenSet[str]) -> None:
        self.name = name
        self.factory = factory
        self.capabilities = capabilities

    def setup(self, scope: Scope) -> TimeoutChannel:
        return TimeoutChannel(self.factory)


_CALLS = frozenset({p.CALL_FORM, p.CALL_ONLY, p.NESTING, p.SUB_SECOND})
BACKENDS = [
    CallsBackend("itimer-call-timeouts", ItimerCalls, _CALLS | {p.INTERRUPTS_BLOCKING}),
    CallsBackend("thread-call-timeouts", ThreadCalls, _CALLS | {p.EXECUTOR}),
    CallsBackend("fork-call-timeouts", ForkCalls, _CALLS | {p.EXECUTOR, p.STOPS_GUARDED_CODE}),
]
