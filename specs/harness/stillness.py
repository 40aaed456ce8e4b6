"""Call a hang before the deadline: every process of the example is asleep in a wait
that no timer will end, and nothing has run for a while.

The rule (all of it must hold at two samples ``window_s`` apart, and at every
sample in between):

* the *closed world* is every thread of this process but the caller (the parent
  waiting for the workers; in the thread placement the roles are these threads)
  and every thread of every descendant process (forked and pool workers, whatever
  they started, the forkserver, idle pool workers).  Zombies are ignored: they
  can wake no one;
* every one of those threads is in state ``S`` (interruptible sleep; ``R``, ``D``,
  ``T``… mean it runs, is in I/O that ends, or is stopped and might be continued)
  and inside a system call whose arguments say *wait without a timeout*
  (``read``/``write``/``recv*``/``send*``/``accept``/``open`` of a FIFO, ``msgrcv``,
  ``semop``, ``flock``, ``fcntl(F_SETLKW)``, ``wait4``, ``pause``/``sigsuspend``,
  ``sigtimedwait``/``poll``/``ppoll``/``select``/``epoll_wait``/``futex``/
  ``mq_timed*``/``semtimedop`` with no timeout…, read from ``/proc/<tid>/syscall``).
  ``nanosleep``, a ``poll`` with a timeout, a timed ``futex``: a timer the example
  set will wake it, so it is not a hang (the harness's own ``wait_for`` polls with
  sleeps, so a role waiting for an event is never called still: conservative);
* no process has a POSIX timer (``/proc/<pid>/timers``) or a timerfd open, and no
  thread catches or blocks ``SIGALRM`` (an ``alarm``/``ITIMER_REAL`` is invisible
  in ``/proc``; a process that would handle or wait for one may have one pending);
* no thread ran at all: the sum of their context switches did not change, and
  the set of threads did not change.

A thread in such a wait can only be woken by another thread or process (all
asleep the same way, none ran), by a kernel timer (excluded above), or from
outside the closed world.  So calling it a hang cannot be wrong unless the
example waits for something outside: a daemon the backend started outside this
process tree, another user's process, a socket with ``SO_RCVTIMEO`` (a timed wait
invisible in ``/proc``), or an ``ITIMER_REAL`` armed while ``SIGALRM`` is at its
default action (the process would die of it rather than wake).  Those are the
limits; the window (a floor of a second, and a tenth of the deadline) is there
so that they would need a wake-up long after everything went quiet, and the
full deadline still bounds everything else (a spinning role, a role polling
with a timeout).  Only on x86-64 Linux, where the system call numbers below are
right; elsewhere :func:`supported` is False and the full deadline applies.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

#: Stillness must last at least this long (and a tenth of the deadline) before a hang is called.
FLOOR_S = 1.0
FRACTION_OF_DEADLINE = 0.1
#: How often the parent samples /proc once an example has run for a window.
SAMPLE_S = 0.1

# x86-64 system call numbers of waits that have no timeout at all: read write open readv
# writev pause accept sendto recvfrom sendmsg recvmsg wait4 semop msgsnd msgrcv flock
# rt_sigsuspend waitid openat accept4 sendmmsg.
_UNTIMED = frozenset({0, 1, 2, 19, 20, 34, 43, 44, 45, 46, 47, 61, 65, 69, 70, 73, 130, 247, 257, 288, 307})
#: Calls whose timeout is a pointer argument (index from 0): NULL means no timeout
#: (select rt_sigtimedwait semtimedop mq_timedsend mq_timedreceive pselect6 ppoll recvmmsg epoll_pwait2).
_NULL_TIMEOUT = {23: 4, 128: 2, 220: 3, 242: 4, 243: 4, 270: 4, 271: 2, 299: 4, 441: 4}
#: Calls whose timeout is an int argument: negative means no timeout.
_NEGATIVE_TIMEOUT = {7: 2, 232: 3, 281: 3}  # poll, epoll_wait, epoll_pwait
_FUTEX, _FCNTL = 202, 72
_FUTEX_WAITS = {0, 6, 9}  # FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET (timeout in arg 3)
_FCNTL_WAITS = {7, 38}  # F_SETLKW, F_OFD_SETLKW
_SIGALRM_BIT = 1 << (14 - 1)


def supported() -> bool:
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64") and os.path.exists(
        f"/proc/self/task/{threading.get_native_id()}/children")


def window_for(deadline_s: float) -> float:
    return max(FLOOR_S, FRACTION_OF_DEADLINE * deadline_s)


def untimed_wait(syscall_line: str) -> bool:
    """True if ``/proc/<tid>/syscall`` shows a blocking call that has no timeout."""
    fields = syscall_line.split()
    if len(fields) < 7 or fields[0] in ("running", "-1"):
        return False
    nr = int(fields[0])
    args = [int(a, 16) for a in fields[1:7]]
    if nr in _UNTIMED:
        return True
    if nr in _NULL_TIMEOUT:
        return args[_NULL_TIMEOUT[nr]] == 0
    if nr in _NEGATIVE_TIMEOUT:
        value = args[_NEGATIVE_TIMEOUT[nr]] & 0xFFFFFFFF
        return value >= 0x80000000  # an int below zero
    if nr == _FUTEX:
        return (args[1] & 0x7F) in _FUTEX_WAITS and args[3] == 0
    if nr == _FCNTL:
        return args[1] in _FCNTL_WAITS
    return False


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:  # gone (exited), or not ours to read
        return None


def _descendants(pid: int) -> List[int]:
    found: List[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            kids = _read(f"/proc/{p}/task/{tid}/children") or ""
            for k in kids.split():
                found.append(int(k))
                todo.append(int(k))
    return found


def _process_has_timers(pid: int) -> bool:
    if (_read(f"/proc/{pid}/timers") or "").strip():
        return True
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if "timerfd" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                return True
        except OSError:
            pass
    return False


#: Why the last snapshot was not still (for debugging a hang called only at the deadline).
last_reason = ""


def snapshot(strict: bool = True) -> Optional[Tuple[FrozenSet[Tuple[int, int]], int]]:
    """(the threads of the closed world, their total context switches) if every one is
    asleep in a wait without a timeout and none may expect a timer; else None.

    Not ``strict`` (the adaptive deadline has passed, see :class:`Stillness`): a thread
    may be in any interruptible sleep, timed or not, and its switches are not counted."""
    global last_reason
    me = os.getpid()
    caller = threading.get_native_id()
    threads: List[Tuple[int, int]] = []
    switches = 0
    for pid in [me] + _descendants(me):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue  # exited meanwhile
        live = False
        for tid in tids:
            if pid == me and tid == caller:
                continue
            status = _read(f"/proc/{pid}/task/{tid}/status")
            if status is None:
                continue
            fields: Dict[str, str] = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
            state = fields.get("State", "?").strip()[:1]
            if state in ("Z", "X"):
                continue
            if state != "S":
                last_reason = f"{pid}/{tid} in state {state}"
                return None
            if (int(fields.get("SigBlk", "0"), 16) | int(fields.get("SigCgt", "0"), 16)) & _SIGALRM_BIT:
                last_reason = f"{pid}/{tid} catches or blocks SIGALRM"
                return None
            if strict:
                call = _read(f"/proc/{pid}/task/{tid}/syscall") or ""
                if not untimed_wait(call):
                    last_reason = f"{pid}/{tid} ({fields.get('Name', '?').strip()}) in {call.split()[:5]}"
                    return None
                switches += int(fields.get("voluntary_ctxt_switches", "0")) + int(
                    fields.get("nonvoluntary_ctxt_switches", "0"))
            threads.append((pid, tid))
            live = True
        if live and pid != me and _process_has_timers(pid):
            last_reason = f"{pid} has a timer"
            return None
    return frozenset(threads), switches


class Stillness:
    """Samples :func:`snapshot` while the parent waits; :meth:`still` is True once the
    closed world has been asleep without a timer and without running for ``window_s``.

    With ``lenient_after`` (seconds from the start; the adaptive deadline, see
    ``Case``), from then on a quieter test suffices: every thread asleep (timed waits
    too: a role polling for something that never comes), no timer, no process
    catching ``SIGALRM``, the same threads, and no role recording any operation in
    its history (``history_paths`` kept their sizes) for ``window_s``.  A role that
    is runnable but starved by a loaded machine is in state ``R``, never ``S``, so
    load alone never satisfies this test; what could is a timed sleep longer than
    the adaptive deadline, which is why that deadline is bounded below by the
    longest duration the example drew (see ``Case._adaptive_s``).
    """

    def __init__(self, window_s: float, enabled: bool = True, lenient_after: Optional[float] = None,
                 history_paths: Sequence[str] = ()) -> None:
        self.window_s = window_s
        self.enabled = enabled and supported()
        self.lenient_after = lenient_after
        self.history_paths = list(history_paths)
        self.start = time.monotonic()
        self._since: Optional[float] = None
        self._first: Optional[Tuple[object, ...]] = None
        #: Set once a hang has been called this way (for the report), and how.
        self.called = False
        self.lenient = False

    def nap(self, left: float) -> float:
        """How long the parent may sleep before it must look again (at most ``left``)."""
        if not self.enabled:
            return left
        return min(left, max(SAMPLE_S, self.start + self.window_s - time.monotonic()))

    def _sizes(self) -> Tuple[int, ...]:
        sizes = []
        for path in self.history_paths:
            try:
                sizes.append(os.stat(path).st_size)
            except OSError:
                sizes.append(-1)
        return tuple(sizes)

    def _shot(self, now: float) -> Optional[Tuple[object, ...]]:
        strict = snapshot(strict=True)
        if strict is not None and strict[0]:
            return ("strict",) + strict
        if self.lenient_after is not None and now - self.start >= self.lenient_after:
            loose = snapshot(strict=False)
            if loose is not None and loose[0]:
                return ("lenient", loose[0], self._sizes())
        return None

    def still(self) -> bool:
        if not self.enabled or self.called:
            return self.called
        now = time.monotonic()
        if now - self.start < self.window_s:
            return False  # a quick example never pays for a sample
        shot = self._shot(now)
        if shot is None or (self._first is not None and shot != self._first):
            self._first, self._since = shot, (now if shot is not None else None)
            return False
        if self._first is None or self._since is None:
            self._first, self._since = shot, now
            return False
        if now - self._since >= self.window_s:
            self.called = True
            self.lenient = shot[0] == "lenient"
        return self.called
