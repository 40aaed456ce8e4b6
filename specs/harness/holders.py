"""Who keeps a hung reader from its EOF: the processes of this run that still hold the
write end of the pipe (or FIFO) it is blocked reading.

A read on a pipe returns EOF only once every write end is closed, in every process
(pipe(7)); one forgotten copy (the parent's, a sibling's, the reader's own inherited
one) and the reader waits forever.  When a worker is still running at the deadline,
the harness looks, before aborting it, at the system call it is blocked in
(/proc/<pid>/syscall), and if that is a read, at every descriptor of this process and
its descendants open on the same pipe for writing (/proc/<pid>/fd, fdinfo's flags).
Only processes of this run are looked at.  The finding goes to a file of its own next
to the worker's output (the worker's own descriptor would write its stack dump over an
appended line), under :data:`HOLDERS_MARK`; ``placements.classify`` adds it to the
output, where the hang report picks it up.
"""

from __future__ import annotations

import os
import platform
from typing import Dict, List, Optional, Tuple

HOLDERS_MARK = "ipcc-holders:"
#: read(2) and readv(2) by architecture (asm/unistd_64.h; the generic table on arm64).
_READ_SYSCALLS = {"x86_64": (0, 19), "aarch64": (63, 65)}


def blocked_read_fd(pid: int) -> Optional[int]:
    """The descriptor ``pid`` is blocked reading, if it is blocked in read(2)/readv(2)."""
    reads = _READ_SYSCALLS.get(platform.machine())
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return None
    if not reads or len(fields) < 2 or not fields[0].isdigit() or int(fields[0]) not in reads:
        return None
    return int(fields[1], 16)


def _run_processes() -> List[int]:
    """This process and its descendants: the processes of this run (this worker's)."""
    from .named import _process_tree

    return sorted(_process_tree())


def write_holders(pid: int, fd: int) -> List[Tuple[int, int]]:
    """``(pid, fd)`` of every descriptor of this run open for writing on the object that
    ``pid``'s descriptor ``fd`` refers to."""
    try:
        st = os.stat(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return []
    found = []
    for other in _run_processes():
        try:
            fds = os.listdir(f"/proc/{other}/fd")
        except OSError:
            continue
        for entry in fds:
            try:
                est = os.stat(f"/proc/{other}/fd/{entry}")
                if (est.st_dev, est.st_ino) != (st.st_dev, st.st_ino):
                    continue
                with open(f"/proc/{other}/fdinfo/{entry}") as f:
                    flags = next(int(ln.split()[1], 8) for ln in f if ln.startswith("flags:"))
            except (OSError, StopIteration, ValueError):
                continue
            if flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                found.append((other, int(entry)))
    return found


def describe(pid: int, names: Dict[int, str]) -> str:
    """One line, or "" when ``pid`` is not blocked reading."""
    fd = blocked_read_fd(pid)
    if fd is None:
        return ""
    try:
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return ""
    holders = write_holders(pid, fd)

    def who(p: int) -> str:
        name = names.get(p) or ("the parent (the test process)" if p == os.getpid() else "a process of this run")
        return f"{name} (pid {p}"

    shown = ", ".join(f"{who(p)}, fd {n})" for p, n in holders) or "no process of this run"
    return (f"{names.get(pid, f'pid {pid}')} is blocked reading fd {fd} ({target}); "
            f"its write end is still open in: {shown}")


def note(pid: int, path: str, names: Dict[int, str]) -> None:
    """Write :func:`describe`'s line to ``path``; never raises."""
    try:
        line = describe(pid, names)
        if line:
            with open(path, "w") as f:
                f.write(f"\n{HOLDERS_MARK} {line}\n")
    except Exception:  # a diagnosis must never cost the verdict
        pass
