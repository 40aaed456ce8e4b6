"""Broken signal facilities: each is a plausible re-implementation or shortcut that
works in a demo and breaks one rule of alarm(2), signal(7) or the Python docs.

Every class overrides as little of :class:`PosixSignals` as it takes; the
docstring says which piece of folk knowledge it embodies.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from ipc_specs.signals import protocol as p

from ..signals import PosixSignals, PosixSignalsBackend
from . import Exhibit

ITIMER_REAL = signal.ITIMER_REAL
SIGALRM = int(signal.SIGALRM)


def _variant(name: str, facilities: type) -> Any:
    """A backend claiming what ``posix-signals`` claims, whose facilities are ``facilities``."""
    return type(facilities.__name__ + "Backend", (PosixSignalsBackend,),
                {"name": name, "facilities_class": facilities})()


def _nearest(seconds: float) -> int:
    return 0 if seconds <= 0 else max(1, int(seconds + 0.5))


# --- alarm_returns_seconds_left_rounded ----------------------------------------------
class FlooringAlarm(PosixSignals):
    """alarm() rebuilt on setitimer with ``int(old_value)``: floors instead of rounding,
    so 0.3 s left reads as 0, "no alarm pending"."""

    def alarm(self, seconds: int) -> int:
        return int(signal.setitimer(ITIMER_REAL, seconds)[0])


# --- alarm_replaces_previous_alarm -----------------------------------------------------
class QueuedAlarms(PosixSignals):
    """One threading.Timer per alarm() call, "so no deadline is lost": the earlier
    alarm is not replaced, and both fire."""

    def __init__(self) -> None:
        self.timers: List[Tuple[float, threading.Timer]] = []

    def alarm(self, seconds: int) -> int:
        now = time.monotonic()
        left = max((due - now for due, t in self.timers if t.is_alive()), default=0.0)
        if seconds == 0:
            for _, t in self.timers:
                t.cancel()
            self.timers.clear()
        else:
            timer = threading.Timer(seconds, os.kill, (os.getpid(), SIGALRM))
            timer.daemon = True
            timer.start()
            self.timers.append((now + seconds, timer))
        return _nearest(left)


# --- alarm_zero_cancels_pending_alarm -------------------------------------------------
class ZeroSkippingAlarm(PosixSignals):
    """``if not seconds: return 0`` — "nothing to arm" — so alarm(0) never cancels."""

    def alarm(self, seconds: int) -> int:
        if not seconds:
            return 0
        return signal.alarm(seconds)


# --- alarm_and_setitimer_share_one_timer -------------------------------------------------
class SeparateAlarmTimer(PosixSignals):
    """alarm() on its own timer thread, rounding right, but blind to setitimer and
    invisible to getitimer: the two APIs no longer interfere, which alarm(2) says they do."""

    def __init__(self) -> None:
        self.due = 0.0
        self.timer: Optional[threading.Timer] = None

    def alarm(self, seconds: int) -> int:
        left = _nearest(self.due - time.monotonic()) if self.timer and self.timer.is_alive() else 0
        if self.timer:
            self.timer.cancel()
        self.timer = None
        if seconds:
            self.due = time.monotonic() + seconds
            self.timer = threading.Timer(seconds, os.kill, (os.getpid(), SIGALRM))
            self.timer.daemon = True
            self.timer.start()
        return left


# --- forked_child_starts_without_alarm --------------------------------------------------
class CachedAlarm(PosixSignals):
    """Keeps the deadline in the object to answer alarm() without a system call; after
    fork() the child inherits the object, so it "has" the parent's alarm."""

    def __init__(self) -> None:
        self.due: Optional[float] = None

    def alarm(self, seconds: int) -> int:
        now = time.monotonic()
        left = _nearest(self.due - now) if self.due is not None else 0
        signal.alarm(seconds)
        self.due = now + seconds if seconds else None
        return left

    def getitimer(self, which: int) -> Tuple[float, float]:
        if which == ITIMER_REAL and self.due is not None:
            return (max(0.0, self.due - time.monotonic()), 0.0)
        return signal.getitimer(which)


# --- tiny_setitimer_value_fires ----------------------------------------------------------
class MillisecondItimer(PosixSignals):
    """Truncates timer values to whole milliseconds ("nobody needs finer"): a 1 µs
    value becomes 0, and 0 disarms the timer instead of arming it."""

    def setitimer(self, which: int, seconds: float, interval: float = 0.0) -> Tuple[float, float]:
        return signal.setitimer(which, int(seconds * 1000) / 1000, int(interval * 1000) / 1000)


# --- standard_signals_coalesce_while_blocked ---------------------------------------------
class QueueingBus(PosixSignals):
    """A signal "bus" that never loses a signal: standard signals travel as real-time
    ones (SIGRTMIN + n), which queue, so every send is counted."""

    def _wire(self, signum: int) -> int:
        return int(signal.SIGRTMIN) + signum if signum < int(signal.SIGRTMIN) else signum

    def _wires(self, signals: Iterable[int]) -> Set[int]:
        return {self._wire(s) for s in signals} | set(signals)

    def kill(self, pid: int, signum: int) -> None:
        os.kill(pid, self._wire(signum) if signum else 0)

    def pthread_sigmask(self, how: int, signals: Iterable[int]) -> Set[int]:
        return super().pthread_sigmask(how, self._wires(signals))

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        wanted = list(signals)
        got = super().sigtimedwait(self._wires(wanted), timeout)
        if got is None:
            return None
        back = {self._wire(s): s for s in wanted}
        return (back.get(got[0], got[0]), got[1])


# --- realtime_signals_queue_every_instance ------------------------------------------------
class FlagDequeue(PosixSignals):
    """Treats a signal as a flag: having dequeued one, it clears every other pending
    instance of the same number, as if real-time signals did not queue."""

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        got = super().sigtimedwait(signals, timeout)
        if got is not None:
            while super().sigtimedwait([got[0]], 0) is not None:
                pass
        return got


# --- pending_signals_dequeue_standard_first_then_realtime_ascending -------------------------
class LifoDequeue(PosixSignals):
    """Drains everything pending into a Python list and hands it out with ``pop()``:
    last sent, first dequeued."""

    def __init__(self) -> None:
        self.stack: List[p.Dequeued] = []

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        wanted = list(signals)
        while True:
            got = super().sigtimedwait(wanted, 0)
            if got is None:
                break
            self.stack.append(got)
        if self.stack:
            return self.stack.pop()
        return super().sigtimedwait(wanted, timeout)


class HighestNumberFirst(PosixSignals):
    """Takes a higher real-time number for a higher priority, as with mq_send priorities:
    drains what is pending and hands out standard signals first, then real-time ones
    highest number first (the kernel goes lowest first)."""

    def __init__(self) -> None:
        self.drained: List[p.Dequeued] = []

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        wanted = list(signals)
        rtmin = int(signal.SIGRTMIN)
        while True:
            got = super().sigtimedwait(wanted, 0)
            if got is None:
                break
            self.drained.append(got)
        # stable sort: standard signals keep the kernel's order, then real-time by falling number
        self.drained.sort(key=lambda item: (item[0] >= rtmin, -item[0] if item[0] >= rtmin else 0))
        if self.drained:
            return self.drained.pop(0)
        return super().sigtimedwait(wanted, timeout)


# --- kill_with_signal_zero_probes_without_sending ------------------------------------------
class WinchProbe(PosixSignals):
    """Probes liveness with SIGWINCH, "harmless because ignored by default": but it is
    a real signal, pending at every target that blocks it."""

    def kill(self, pid: int, signum: int) -> None:
        os.kill(pid, signum or int(signal.SIGWINCH))


# --- zero_timeout_sigtimedwait_polls ------------------------------------------------------
class ZeroMeansForever(PosixSignals):
    """``timeout or None``: treats a zero timeout as "no timeout" and waits forever."""

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        if not timeout:
            info = signal.sigwaitinfo(signals)
            return (info.si_signo, info.si_pid)
        return super().sigtimedwait(signals, timeout)


# --- python_handlers_run_in_main_thread ----------------------------------------------------
class DispatcherThread(PosixSignals):
    """Runs handlers on a dedicated sigwait() thread "so the main thread is never
    interrupted" — a sound C pattern, but Python code then runs handlers off the main
    thread, and signal() no longer refuses other threads."""

    def signal(self, signum: int, handler: p.Handler) -> p.Handler:
        signal.pthread_sigmask(signal.SIG_BLOCK, [signum])

        def dispatch() -> None:
            while True:
                got = signal.sigwait([signum])
                if callable(handler):
                    handler(got, None)

        threading.Thread(target=dispatch, name="signal-dispatcher", daemon=True).start()
        return signal.SIG_DFL


# --- blocking_read_resumes_after_handler_returns --------------------------------------------
class EintrAsEof(PosixSignals):
    """A C-level read (ctypes libc.read) that maps EINTR to b'': the pre-PEP 475
    idiom ``except InterruptedError: return b''`` reports a false end of file."""

    libc = ctypes.CDLL(None, use_errno=True)

    def read(self, fd: int, n: int) -> bytes:
        buf = ctypes.create_string_buffer(n)
        got = self.libc.read(fd, buf, n)
        if got < 0:
            if ctypes.get_errno() == errno.EINTR:
                return b""
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return buf.raw[:got]


# --- wakeup_fd_gets_each_signal_number --------------------------------------------------------
class PythonLevelWakeup(PosixSignals):
    """A home-made wakeup fd written from the Python handler with b'\\0' (what CPython
    itself wrote before 3.5): no signal number, and blocking fds are taken as they are."""

    def __init__(self) -> None:
        self.fd = -1
        self.handlers: Dict[int, p.Handler] = {}

    def set_wakeup_fd(self, fd: int) -> int:
        old, self.fd = self.fd, fd
        return old

    def signal(self, signum: int, handler: p.Handler) -> p.Handler:
        def wrapper(s: int, frame: Any) -> None:
            if self.fd >= 0:
                os.write(self.fd, b"\0")
            if callable(handler):
                handler(s, frame)

        return super().signal(signum, wrapper if callable(handler) else handler)


# --- sigkill_and_sigstop_cannot_be_caught_ignored_or_blocked -------------------------------------
class ForgivingSignals(PosixSignals):
    """The "install handlers for every signal, never crash at start-up" loop: signal()
    swallows the OSError, so the caller believes SIGKILL and SIGSTOP are handled, and a
    mask kept in Python "blocks" them too."""

    def __init__(self) -> None:
        self.extra: Set[int] = set()

    def signal(self, signum: int, handler: p.Handler) -> p.Handler:
        try:
            return super().signal(signum, handler)
        except OSError:
            return None

    def pthread_sigmask(self, how: int, signals: Iterable[int]) -> Set[int]:
        wanted = {int(s) for s in signals}
        unstoppable = {int(signal.SIGKILL), int(signal.SIGSTOP)}
        old = super().pthread_sigmask(how, wanted - unstoppable) | self.extra
        if how == signal.SIG_BLOCK:
            self.extra |= wanted & unstoppable
        elif how == signal.SIG_UNBLOCK:
            self.extra -= wanted
        else:
            self.extra = wanted & unstoppable
        return old


# --- forked_child_inherits_mask_but_no_pending_signals -------------------------------------------
class RememberedPending(PosixSignals):
    """Keeps its own record of the signals it sent to this process while they were
    blocked, "because sigpending is not portable": the record is a Python object, so
    fork copies it, and the child reports its parent's pending signals as its own."""

    def __init__(self) -> None:
        self.sent: Set[int] = set()

    def kill(self, pid: int, signum: int) -> None:
        super().kill(pid, signum)
        if pid == os.getpid() and signum in {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])}:
            self.sent.add(int(signum))

    def sigpending(self) -> Set[int]:
        return super().sigpending() | self.sent

    def sigtimedwait(self, signals: Iterable[int], timeout: float) -> Optional[p.Dequeued]:
        got = super().sigtimedwait(signals, timeout)
        if got is not None:
            self.sent.discard(got[0])
        return got


class ReturnsNewHandler(PosixSignals):
    """signal() returns the handler it just installed ("returns the handler"), not the one it
    replaced: code that hands back what it was given reinstalls its own handler for good."""

    def signal(self, signum: int, handler: p.Handler) -> p.Handler:
        signal.signal(signum, handler)  # type: ignore[arg-type]
        return handler


class MaskOnlyAdds(PosixSignals):
    """pthread_sigmask(SIG_SETMASK, old) implemented as "block these too" (a bus that only
    tracks what it blocked): handing back the old mask leaves the new signals blocked."""

    def pthread_sigmask(self, how: int, signals: Iterable[int]) -> Set[int]:
        return super().pthread_sigmask(signal.SIG_BLOCK if how == signal.SIG_SETMASK else how, signals)


EXHIBITS: List[Exhibit] = [
    Exhibit(_variant("broken-flooring-alarm", FlooringAlarm), "alarm_returns_seconds_left_rounded",
            "alarm() rounds to nearest and never says 0 while an alarm is pending; int() floors."),
    Exhibit(_variant("broken-queued-alarms", QueuedAlarms), "alarm_replaces_previous_alarm",
            "A process has one alarm: a new one replaces the old, it does not join a queue."),
    Exhibit(_variant("broken-zero-skipping-alarm", ZeroSkippingAlarm), "alarm_zero_cancels_pending_alarm",
            "alarm(0) is the cancel call; skipping it as 'nothing to arm' leaves the old alarm armed."),
    Exhibit(_variant("broken-separate-alarm-timer", SeparateAlarmTimer), "alarm_and_setitimer_share_one_timer",
            "alarm() and setitimer(ITIMER_REAL) are one timer; code that mixes them must expect interference."),
    Exhibit(_variant("broken-cached-alarm", CachedAlarm), "forked_child_starts_without_alarm",
            "Timer state cached in Python objects survives fork(); the kernel's alarm does not."),
    Exhibit(_variant("broken-millisecond-itimer", MillisecondItimer), "tiny_setitimer_value_fires",
            "A tiny timer value must still arm the timer; rounding it to 0 disarms it."),
    Exhibit(_variant("broken-queueing-bus", QueueingBus), "standard_signals_coalesce_while_blocked",
            "Standard signals are flags, not messages: five sends while blocked are one pending signal."),
    Exhibit(_variant("broken-flag-dequeue", FlagDequeue), "realtime_signals_queue_every_instance",
            "Real-time signals queue: each send is one instance to dequeue."),
    Exhibit(_variant("broken-lifo-dequeue", LifoDequeue),
            "pending_signals_dequeue_standard_first_then_realtime_ascending",
            "Linux dequeues standard signals first, then real-time ones lowest number first, FIFO within one."),
    Exhibit(_variant("broken-highest-number-first", HighestNumberFirst),
            "pending_signals_dequeue_standard_first_then_realtime_ascending",
            "Real-time signals are not message priorities: the lowest number is dequeued first."),
    Exhibit(_variant("broken-winch-probe", WinchProbe), "kill_with_signal_zero_probes_without_sending",
            "Signal 0 is the probe; any real signal, even a default-ignored one, is delivered."),
    Exhibit(_variant("broken-zero-means-forever", ZeroMeansForever), "zero_timeout_sigtimedwait_polls",
            "A zero timeout is a poll; 'timeout or None' turns it into waiting forever.", hangs=True),
    Exhibit(_variant("broken-dispatcher-thread", DispatcherThread), "python_handlers_run_in_main_thread",
            "Python runs signal handlers in the main thread; a dispatcher thread breaks that promise."),
    Exhibit(_variant("broken-eintr-as-eof", EintrAsEof), "blocking_read_resumes_after_handler_returns",
            "EINTR means 'try again' (PEP 475), not end of file."),
    Exhibit(_variant("broken-forgiving-signals", ForgivingSignals),
            "sigkill_and_sigstop_cannot_be_caught_ignored_or_blocked",
            "SIGKILL and SIGSTOP cannot be caught, ignored or blocked: a layer that swallows the EINVAL "
            "promises what the kernel will not do."),
    Exhibit(_variant("broken-remembered-pending", RememberedPending),
            "forked_child_inherits_mask_but_no_pending_signals",
            "fork() copies the mask but not the pending signals; a record of them kept in Python is copied "
            "anyway."),
    Exhibit(_variant("broken-python-level-wakeup", PythonLevelWakeup), "wakeup_fd_gets_each_signal_number",
            "The wakeup fd carries one byte per C-level delivery holding the signal number, from a "
            "non-blocking fd."),
    Exhibit(_variant("broken-returns-new-handler", ReturnsNewHandler),
            "handing_back_what_was_returned_restores_signal_state",
            "signal.signal returns the previous handler, so that code can put it back; returning the new one "
            "leaves the caller's handler gone."),
    Exhibit(_variant("broken-mask-only-adds", MaskOnlyAdds),
            "handing_back_what_was_returned_restores_signal_state",
            "SIG_SETMASK replaces the mask, so that handing back the old one unblocks what was blocked since."),
]
