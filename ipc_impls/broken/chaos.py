"""Chaos backends: not a wrong idea about IPC, but a process that misbehaves.

Each is an ``os.pipe`` backend with one fault: an operation that blocks
forever, a worker that calls ``os._exit`` or segfaults halfway through a write,
a reader that allocates without bound, a backend that leaks a kernel object and
a descriptor, one that fails every other example.  The harness must turn each
into a clear verdict within the deadline and leave nothing behind;
``tests/selftest/test_chaos.py`` runs all of them through the pytest plugin, as
a backend author would, and checks the verdict, the detail and the machine.

They are not in ``all_exhibits()``: several of them cannot be caught by an
invariant's check alone (a leak is caught by the audit around it, a flaky
backend by the replays), so each says which verdict the run must reach.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import threading
from dataclasses import dataclass
from typing import Any, List

from ipc_specs.harness.resources import Scope, tag_key_base, worker_tag

from .._endpoints import BytesLike, FdReader, FdWriter, require_bytes
from ..streams import PipeBackend, PipeChannel

#: The invariant every chaos backend is run against: the plainest stream check.
CHECKED = "bytes_arrive_complete_and_in_order"


@dataclass(frozen=True)
class Chaos:
    backend: Any
    verdict: str  # what the run must report: "fail", "flaky", "error" or "crashed"
    shows: str  # text the verdict's detail must contain
    lesson: str  # what the harness does about it


#: What they claim: os-pipe's claims but thread safety.  In the thread placement a
#: fault strikes the process that runs the check (pytest's, or under ``-n 0`` the
#: child it forks per check): that is ``chaos-segfaults-in-thread``'s lesson alone.
CLAIMS = PipeBackend.capabilities - {"thread_safe"}


def _variant(name: str, channel_cls: type, claims: Any = CLAIMS) -> Any:
    return type(channel_cls.__name__ + "Backend", (PipeBackend,),
                {"name": name, "capabilities": claims, "setup": lambda self, scope: channel_cls()})()


class _HalfThenWriter(FdWriter):
    """Writes the first half of a payload, then does :meth:`fault`."""

    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        view = memoryview(data)
        os.write(self.fd, view[: len(view) // 2])
        self.fault()
        return len(view)  # not reached

    def fault(self) -> None:
        raise NotImplementedError


# --- blocks forever ------------------------------------------------------------------------
class BlocksForeverWriter(FdWriter):
    def write(self, data: BytesLike) -> int:
        threading.Event().wait()  # nothing ever sets it
        return 0


class BlocksForeverPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return BlocksForeverWriter(super().open_writer(nonblocking=nonblocking).fd)


# --- os._exit mid-operation -----------------------------------------------------------------
class ExitingWriter(_HalfThenWriter):
    def fault(self) -> None:
        os._exit(0)  # no exception, no cleanup, exit status 0


class ExitsMidWritePipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return ExitingWriter(super().open_writer(nonblocking=nonblocking).fd)


# --- segfault -------------------------------------------------------------------------------
class SegfaultingWriter(_HalfThenWriter):
    def fault(self) -> None:
        ctypes.string_at(0)  # reads address 0: SIGSEGV, as a buggy C extension would


class SegfaultsPipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return SegfaultingWriter(super().open_writer(nonblocking=nonblocking).fd)


# --- unbounded allocation -------------------------------------------------------------------
class HoardingReader(FdReader):
    """Keeps every chunk it ever read, plus a "read-ahead cache" that never stops growing."""

    def read(self, n: int) -> bytes:
        hoard: List[bytes] = []
        while True:
            hoard.append(b"\xa5" * (16 << 20))  # touched, so it is really allocated


class AllocatesWithoutBoundPipe(PipeChannel):
    def open_reader(self, *, nonblocking: bool = False) -> FdReader:
        return HoardingReader(super().open_reader(nonblocking=nonblocking).fd)


# --- leaks ----------------------------------------------------------------------------------
class LeakingBackend(PipeBackend):
    """Each setup creates a POSIX shared memory object and opens a descriptor in the
    parent, and never unlinks or closes either (nor registers them with the scope)."""

    name = "chaos-leaks-objects"
    capabilities = CLAIMS

    def setup(self, scope: Scope) -> PipeChannel:
        path = os.path.join("/dev/shm", scope.name())  # shm_open(3) keeps POSIX shm here
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
        os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # and forgets the descriptor
        return PipeChannel()


def leak_prefix() -> str:
    """The names the two twins below choose: their own, without the suite's ``ipcc_<tag>_``
    form (the audit must find them by diffing), but with the run's tag, so that the self-test
    that runs them can find and remove what the audit reports and leaves in place."""
    return f"leak-{worker_tag()}-"


class LeaksNamedSemaphoreBackend(PipeBackend):
    """Each setup creates a named POSIX semaphore under a name of its own choosing (a
    "writers' lock" it never uses), closes it, and never unlinks it: one ``sem.*`` file
    in /dev/shm per example."""

    name = "chaos-leaks-named-semaphore"
    capabilities = CLAIMS

    def setup(self, scope: Scope) -> PipeChannel:
        import posix_ipc

        sem = posix_ipc.Semaphore(f"/{leak_prefix()}{secrets.token_hex(8)}", posix_ipc.O_CREX, 0o600, 1)
        sem.close()  # closed, not unlinked: the name outlives every process
        return PipeChannel()


class LeaksSysvSegmentBackend(PipeBackend):
    """Each setup creates a System V shared memory segment (a "statistics page"),
    detaches it, and never removes it (IPC_RMID): one segment per example in ipcs."""

    name = "chaos-leaks-sysv-segment"
    capabilities = CLAIMS

    def setup(self, scope: Scope) -> PipeChannel:
        import sysv_ipc

        # Its key carries the run's tag (as leak_prefix() does for names), so that the self-test
        # running it can tell its segments from a neighbour's; the audit must still find them.
        base = tag_key_base(worker_tag())
        while True:
            try:
                shm = sysv_ipc.SharedMemory(base | secrets.randbelow(1 << 16), sysv_ipc.IPC_CREX, mode=0o600,
                                            size=4096)
                break
            except sysv_ipc.ExistentialError:
                continue  # that key is taken: draw another
        shm.detach()  # detached, not removed: the segment outlives every process
        return PipeChannel()


# --- flaky ----------------------------------------------------------------------------------
class DroppingWriter(FdWriter):
    def write(self, data: BytesLike) -> int:
        require_bytes(data)
        return len(data)  # says it wrote, writes nothing


class DropsOnePipe(PipeChannel):
    def open_writer(self, *, nonblocking: bool = False) -> FdWriter:
        return DroppingWriter(super().open_writer(nonblocking=nonblocking).fd)


class EveryOtherExampleBackend(PipeBackend):
    """Works on one example, silently drops writes on the next: a race seen from outside."""

    name = "chaos-fails-every-other-example"
    capabilities = CLAIMS

    def __init__(self) -> None:
        self.examples = 0

    def setup(self, scope: Scope) -> PipeChannel:
        self.examples += 1
        return DropsOnePipe() if self.examples % 2 == 0 else PipeChannel()


# --- crashes in the parent's own calls --------------------------------------------------------
class SetupSegfaultsBackend(PipeBackend):
    """A C extension that segfaults in ``setup``: the call the parent (pytest) makes itself."""

    name = "chaos-setup-segfaults"
    capabilities = CLAIMS

    def setup(self, scope: Scope) -> PipeChannel:
        ctypes.string_at(0)  # reads address 0: SIGSEGV
        return PipeChannel()  # not reached


class ExitingTeardown(PipeChannel):
    def teardown(self) -> None:
        super().teardown()
        os._exit(3)  # a library calling exit() from its cleanup


class TeardownExitsBackend(PipeBackend):
    name = "chaos-teardown-exits"
    capabilities = CLAIMS

    def setup(self, scope: Scope) -> PipeChannel:
        return ExitingTeardown()


class SetupSegfaultsLaterBackend(PipeBackend):
    """``setup`` segfaults on its third call in one process: the probe's single call
    passes, so the crash strikes the process that runs the check.  pytest-xdist reports
    its worker's death; under ``-n 0`` the check runs in a child forked for it
    (``ipc_conformance/contain.py``).  Either way the run goes on."""

    name = "chaos-setup-segfaults-later"
    capabilities = CLAIMS

    def __init__(self) -> None:
        self.calls = 0

    def setup(self, scope: Scope) -> PipeChannel:
        self.calls += 1
        if self.calls == 3:
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        return PipeChannel()


CHAOS: List[Chaos] = [
    Chaos(_variant("chaos-blocks-forever", BlocksForeverPipe), "fail", "hung in write",
          "At the deadline the parent aborts the worker; faulthandler shows where it was stuck."),
    Chaos(_variant("chaos-exits-mid-write", ExitsMidWritePipe), "fail", "exited early with code 0",
          "A worker that leaves without a result is reported with its exit status, even 0."),
    Chaos(_variant("chaos-segfaults", SegfaultsPipe), "fail", "died by SIGSEGV",
          "A worker killed by a signal is reported with the signal's name and its stack."),
    Chaos(_variant("chaos-allocates-without-bound", AllocatesWithoutBoundPipe), "fail", "raised MemoryError",
          "Workers run under RLIMIT_DATA (--ipc-worker-memory), so a runaway allocation fails only itself."),
    Chaos(LeakingBackend(), "error", "left behind",
          "The audit around each test lists what a backend left, removes what it can, and fails it."),
    Chaos(LeaksNamedSemaphoreBackend(), "error", "named POSIX semaphore /leak-",
          "The audit diffs /dev/shm around each test: a name the backend chose is a leak too, left in place."),
    Chaos(LeaksSysvSegmentBackend(), "error", "System V shared memory segment",
          "The audit diffs the System V tables around each test and removes a segment this process created."),
    Chaos(EveryOtherExampleBackend(), "flaky", "replays",
          "A failure that does not repeat on every replay is FLAKY with its rate, never a pass."),
    Chaos(SetupSegfaultsBackend(), "crashed", "setup() died by SIGSEGV",
          "setup() runs first in a probe process: a crash there is the backend's verdict, not the run's end."),
    Chaos(TeardownExitsBackend(), "crashed", "teardown() exited the process with code 3",
          "The probe calls teardown() too: a library that exits from its cleanup cannot end the run."),
    Chaos(SetupSegfaultsLaterBackend(), "crashed", "died by SIGSEGV",
          "A crash the probe cannot see ends only the process that ran the check, never the run."),
]

#: The two whose first parent-side call crashes (``tests/selftest/test_verdicts.py``).
PARENT_CRASHERS = [c.backend for c in CHAOS if c.backend.name in ("chaos-setup-segfaults", "chaos-teardown-exits")]

#: Crashes of the process running the check that need more than one call to show, or the
#: thread placement (``tests/selftest/test_verdicts.py``, with and without pytest-xdist).
LATE_CRASHERS = [SetupSegfaultsLaterBackend(),
                 _variant("chaos-segfaults-in-thread", SegfaultsPipe, PipeBackend.capabilities)]

#: For ``--ipc-backend ipc_impls.broken.chaos:BACKENDS``.
BACKENDS = [c.backend for c in CHAOS]
