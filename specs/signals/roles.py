"""Role bodies for signal examples; each runs in a fresh forked worker.

Every body gets the process's facilities from ``proc.open("open_process")``,
so each call lands in the history.  Times a check judges are taken with
``time.monotonic_ns()`` *around* the call (before the invoke, after the
return), which gives the check honest lower and upper bounds.

A body that waits for something that may never come waits until shortly
before the worker's deadline (:func:`budget_s`), so a broken backend is
reported as "never arrived" rather than as a hang.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..harness.worker import Proc

SIGALRM = int(signal.SIGALRM)
ITIMER_REAL = signal.ITIMER_REAL
#: Every signal a process may block (SIGKILL and SIGSTOP cannot be blocked).
BLOCKABLE = sorted(int(s) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP))


def facilities(proc: Proc) -> Any:
    return proc.open("open_process")


def budget_s(proc: Proc) -> float:
    """Seconds left before this worker's deadline, less a margin for reporting."""
    return max(0.05, proc.deadline - time.monotonic() - 0.75)


def drain(fac: Any, signals: Sequence[int]) -> List[Tuple[int, int]]:
    """Dequeue every pending instance of ``signals`` with zero-timeout polls."""
    got: List[Tuple[int, int]] = []
    while True:
        item = fac.sigtimedwait(signals, 0)
        if item is None:
            return got
        got.append((int(item[0]), int(item[1])))


def publish_pid(proc: Proc) -> None:
    path = os.path.join(proc.task.directory, f"pid-{proc.name}")
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    proc.signal(f"pid-{proc.name}")


def peer_pid(proc: Proc, name: str) -> int:
    proc.wait_for(f"pid-{name}")
    with open(os.path.join(proc.task.directory, f"pid-{name}")) as f:
        return int(f.read())


# --- alarm and ITIMER_REAL -------------------------------------------------------------
def alarm_remaining(proc: Proc, first_s: int, elapsed_ms: int) -> Dict[str, int]:
    """alarm(first_s), wait, then alarm(0): what did the two calls return, and when?"""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, [SIGALRM])  # an expired alarm must not kill us
    before_first = time.monotonic_ns()
    first = fac.alarm(first_s)
    after_first = time.monotonic_ns()
    proc.sleep_ms(elapsed_ms)
    before_second = time.monotonic_ns()
    second = fac.alarm(0)
    after_second = time.monotonic_ns()
    return {"first": first, "second": second,
            # The timer ran at least this long, and at most that long, before alarm(0).
            "ran_min_ns": before_second - after_first, "ran_max_ns": after_second - before_first}


def alarm_sequence(proc: Proc, settings: Sequence[int], gaps_ms: Sequence[int]) -> Dict[str, Any]:
    """Call alarm(s) for each setting (gaps in between), then count SIGALRM arrivals.

    Watches until every deadline ever set has passed by 300 ms; if the last
    setting armed an alarm and none came yet, goes on waiting for that one.
    """
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, [SIGALRM])
    calls: List[Tuple[int, int, int, int]] = []  # (before the call, seconds, returned, after the call)
    for i, s in enumerate(settings):
        t = time.monotonic_ns()
        left = fac.alarm(s)
        calls.append((t, s, left, time.monotonic_ns()))
        if i < len(settings) - 1:
            proc.sleep_ms(gaps_ms[i % len(gaps_ms)])
    window_end = max([t + s * 10**9 for _, s, _, t in calls] + [calls[-1][3]]) + 300 * 10**6
    give_up = time.monotonic_ns() + int(budget_s(proc) * 1e9)
    arrivals: List[int] = []
    while True:
        now = time.monotonic_ns()
        end = window_end if arrivals or settings[-1] == 0 else max(window_end, give_up)
        if now >= end:
            break
        if fac.sigtimedwait([SIGALRM], (end - now) / 1e9) is not None:
            arrivals.append(time.monotonic_ns())
    return {"calls": calls, "arrivals": arrivals}


def alarm_and_itimer(proc: Proc, alarm_s: int, itimer_ms: int) -> Dict[str, Any]:
    """Does getitimer see alarm(), and does alarm() see (and cancel) setitimer()?"""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, [SIGALRM])
    fac.alarm(alarm_s)
    seen_by_getitimer = tuple(fac.getitimer(ITIMER_REAL))
    fac.alarm(0)
    fac.setitimer(ITIMER_REAL, itimer_ms / 1000)
    seen_by_alarm = fac.alarm(0)
    # On a loaded machine a short timer can expire before alarm(0) runs; SIGALRM is
    # blocked, so the kernel's own record of that is the signal left pending.
    expired_first = SIGALRM in signal.sigpending()
    after_cancel = tuple(fac.getitimer(ITIMER_REAL))
    return {"getitimer_after_alarm": seen_by_getitimer, "alarm0_after_setitimer": seen_by_alarm,
            "expired_first": expired_first, "getitimer_after_alarm0": after_cancel}


def ask_forked_child(proc: Proc, question: Callable[[], str]) -> str:
    """Fork, answer ``question()`` in the child, and return the answer ('' if it died)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the grandchild
        try:
            os.write(w, question().encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    proc.note("child_reported", data.decode())
    return data.decode()


def alarm_across_fork(proc: Proc, seconds: int) -> Dict[str, Any]:
    """Arm an alarm, fork; the child reports its alarm, the parent re-reads its own."""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, [SIGALRM])
    fac.alarm(seconds)
    raw = fac.unwrapped  # the child must not write into this process's history
    data = ask_forked_child(proc, lambda: f"{raw.alarm(0)} {raw.getitimer(ITIMER_REAL)[0]!r}")
    parts = data.split()
    child_alarm, child_itimer = (int(parts[0]), float(parts[1])) if len(parts) == 2 else (None, None)
    return {"child_alarm": child_alarm, "child_itimer": child_itimer, "parent_alarm": fac.alarm(0)}


def tiny_itimer(proc: Proc, micros: int) -> Dict[str, Any]:
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, [SIGALRM])
    fac.setitimer(ITIMER_REAL, micros / 1e6)
    waited = budget_s(proc)
    got = fac.sigtimedwait([SIGALRM], waited)
    return {"got": None if got is None else int(got[0]), "waited_s": round(waited, 2)}


# --- pending signals, observed with sigtimedwait -----------------------------------------
def blocked_receiver(proc: Proc, watch: Sequence[int], senders: int) -> List[Tuple[int, int]]:
    """Block ``watch``, let every sender send, then dequeue everything pending."""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, watch)
    publish_pid(proc)
    for i in range(senders):
        proc.wait_for(f"sent-S{i}")
    return drain(fac, watch)


def sender(proc: Proc, plan: Sequence[int], after: Optional[str] = None) -> int:
    """Send ``plan`` (signal numbers, in order) to R; return this sender's pid."""
    fac = facilities(proc)
    target = peer_pid(proc, "R")
    if after:
        proc.wait_for(after)  # sequential senders: the previous one has finished
    for signum in plan:
        fac.kill(target, signum)  # kill() returns after the signal is pending at R
    proc.signal(f"sent-{proc.name}")
    return os.getpid()


def probing_receiver(proc: Proc, senders: int) -> List[int]:
    """Block every blockable signal, let senders probe us, report what is pending."""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, BLOCKABLE)
    publish_pid(proc)
    for i in range(senders):
        proc.wait_for(f"sent-S{i}")
    return sorted(int(s) for s in fac.sigpending())


def prober(proc: Proc, probes: int) -> Dict[str, Any]:
    """kill(R, 0) ``probes`` times, and kill(<a reaped pid>, 0) once."""
    fac = facilities(proc)
    target = peer_pid(proc, "R")
    results = [fac.kill(target, 0) for _ in range(probes)]
    gone = os.fork()
    if gone == 0:  # pragma: no cover - the grandchild only exists to leave a free pid
        os._exit(0)
    os.waitpid(gone, 0)
    try:
        fac.kill(gone, 0)
        dead = "returned"
    except ProcessLookupError:
        dead = "ProcessLookupError"
    proc.signal(f"sent-{proc.name}")
    return {"live": results, "dead": dead}


def zero_timeout_poll(proc: Proc, signum: int) -> Tuple[Any, Any]:
    """sigtimedwait(set, 0) with nothing pending, then with one instance pending."""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, [signum])
    empty = fac.sigtimedwait([signum], 0)
    fac.kill(os.getpid(), signum)
    one = fac.sigtimedwait([signum], 0)
    return empty, None if one is None else int(one[0])


# --- handlers, EINTR and the wakeup fd -------------------------------------------------
def _block_all_in_this_thread() -> None:
    # A helper thread must never be the one a process-directed signal lands on.
    signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKABLE)


def _state(tid: int) -> str:
    with open(f"/proc/self/task/{tid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def interrupted_read(proc: Proc, signum: int, signal_after_ms: int, data_after_ms: int) -> Dict[str, Any]:
    """A handler that returns interrupts a blocking read; the read must go on.

    A helper thread waits until the main thread sleeps inside the read (its
    /proc state is S), sends ``signum``, and writes the data later.
    """
    fac = facilities(proc)
    calls: List[int] = []
    fac.signal(signum, lambda s, f: calls.append(s))
    r, w = os.pipe()
    reading = threading.Event()
    main_tid = threading.get_native_id()

    def helper() -> None:
        _block_all_in_this_thread()
        reading.wait()
        while _state(main_tid) != "S":
            time.sleep(0.001)
        time.sleep(signal_after_ms / 1000)
        os.kill(os.getpid(), signum)
        time.sleep(data_after_ms / 1000)
        os.write(w, b"late")

    th = threading.Thread(target=helper, daemon=True)
    th.start()
    reading.set()
    try:
        result: Any = fac.read(r, 64)
    except InterruptedError as exc:
        result = f"InterruptedError: {exc}"
    th.join()
    os.close(r)
    os.close(w)
    return {"read": result, "handler_calls": len(calls)}


def handler_thread(proc: Proc, signum: int) -> Dict[str, Any]:
    """Where does a Python handler run when another thread raises the signal?"""
    fac = facilities(proc)
    ran: List[str] = []

    def handler(s: int, f: Any) -> None:
        ran.append(threading.current_thread().name)

    fac.signal(signum, handler)
    from_thread: List[str] = []

    def helper() -> None:
        try:
            fac.unwrapped.signal(signum, handler)  # the same handler: only the thread differs
            from_thread.append("accepted")
        except ValueError:
            from_thread.append("ValueError")
        os.kill(os.getpid(), signum)

    th = threading.Thread(target=helper, name="helper", daemon=True)
    th.start()
    end = time.monotonic() + budget_s(proc)
    while not ran and time.monotonic() < end:
        time.sleep(0.01)  # the handler runs in the main thread, between bytecodes
    th.join()
    return {"ran_in": ran, "main": threading.main_thread().name, "signal_from_thread": from_thread}


def wakeup_bytes(proc: Proc, plan: Sequence[int]) -> Dict[str, Any]:
    """Install the wakeup fd (after trying a blocking one), raise ``plan`` at ourselves."""
    fac = facilities(proc)
    r, w = os.pipe()
    try:
        fac.set_wakeup_fd(w)
        blocking = "accepted"
    except ValueError:
        blocking = "ValueError"
    fac.set_wakeup_fd(-1)
    os.set_blocking(w, False)
    os.set_blocking(r, False)
    for signum in sorted(set(plan)):
        fac.signal(signum, lambda s, f: None)
    fac.set_wakeup_fd(w)
    for signum in plan:
        fac.kill(os.getpid(), signum)  # unblocked, to ourselves: delivered before kill returns
    data = b""
    while True:
        try:
            chunk = os.read(r, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        data += chunk
    fac.set_wakeup_fd(-1)
    os.close(r)
    os.close(w)
    return {"blocking_fd": blocking, "bytes": list(data)}


def _noop(signum: int, frame: Any) -> None:
    pass


#: The dispositions a role tries to give SIGKILL and SIGSTOP, by name.
DISPOSITIONS: Dict[str, Any] = {"python": _noop, "ignore": signal.SIG_IGN, "default": signal.SIG_DFL}


def try_to_catch_the_uncatchable(proc: Proc, targets: Sequence[int], disposition: str,
                                 others: Sequence[int]) -> Dict[str, Any]:
    """Give ``targets`` a disposition and block them with ``others``; report what stuck."""
    f = facilities(proc)
    outcome: Dict[int, str] = {}
    for sig in targets:
        try:
            f.signal(sig, DISPOSITIONS[disposition])
            outcome[sig] = "accepted"
        except OSError as exc:
            outcome[sig] = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    old = f.pthread_sigmask(signal.SIG_BLOCK, list(targets) + list(others))
    blocked = f.pthread_sigmask(signal.SIG_SETMASK, old)  # returns the mask as it was
    return {"signal": outcome, "blocked": sorted(int(s) for s in blocked)}


def mask_and_pending_across_fork(proc: Proc, blocked: Sequence[int], raised: Sequence[int]) -> Dict[str, Any]:
    """Block ``blocked``, raise ``raised`` (so they pend), fork: the child reports its
    mask and pending set; the parent then takes its own pending signals back."""
    fac = facilities(proc)
    fac.pthread_sigmask(signal.SIG_BLOCK, blocked)
    for signum in raised:
        fac.kill(os.getpid(), signum)
    raw = fac.unwrapped  # the child must not write into this process's history
    data = ask_forked_child(proc, lambda: json.dumps([sorted(raw.pthread_sigmask(signal.SIG_BLOCK, [])),
                                                      sorted(raw.sigpending())]))
    parent_pending = sorted(fac.sigpending())
    for _ in parent_pending:  # leave nothing pending behind
        fac.sigtimedwait(parent_pending, 0)
    child_mask, child_pending = json.loads(data) if data else (None, None)
    return {"child_mask": child_mask, "child_pending": child_pending, "parent_pending": parent_pending}
