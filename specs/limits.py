"""What this machine allows, read at run time (never hard-coded).

Checks size their examples from these numbers, and the pytest header prints
them, because a conformance verdict only means something next to the limits it
was obtained under.
"""

from __future__ import annotations

import fcntl
import functools
import multiprocessing
import os
import resource
import select
import signal
import socket
from typing import Dict, List, Optional, Tuple

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def _read_int(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _has_cap_sys_resource() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 24 & 1)
    except OSError:
        pass
    return False


def _unix_stream_buffers() -> Tuple[int, int]:
    """SO_SNDBUF and SO_RCVBUF of a fresh AF_UNIX stream socketpair: what one send can
    queue before it blocks, hence how much one recv can return at most."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        return a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), b.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    finally:
        a.close()
        b.close()


@functools.cache
def probe() -> Dict[str, object]:
    """Limits and facts of this machine, as a flat dict of printable values."""
    r, w = os.pipe()
    try:
        pipe_buf = os.fpathconf(w, "PC_PIPE_BUF")
        try:
            capacity = fcntl.fcntl(w, F_GETPIPE_SZ)
        except OSError:
            capacity = 65536
    finally:
        os.close(r)
        os.close(w)
    mq = "/proc/sys/fs/mqueue/"
    sndbuf, rcvbuf = _unix_stream_buffers()
    return {
        "pipe_buf": pipe_buf,
        "select.PIPE_BUF": getattr(select, "PIPE_BUF", None),
        "pipe_capacity": capacity,
        "pipe_max_size": _read_int("/proc/sys/fs/pipe-max-size"),
        "page_size": os.sysconf("SC_PAGE_SIZE"),
        "mq_msg_max": _read_int(mq + "msg_max"),
        "mq_msgsize_max": _read_int(mq + "msgsize_max"),
        "mq_queues_max": _read_int(mq + "queues_max"),
        "net_rmem_default": _read_int("/proc/sys/net/core/rmem_default"),
        "net_wmem_default": _read_int("/proc/sys/net/core/wmem_default"),
        "unix_stream_sndbuf": sndbuf,
        "unix_stream_rcvbuf": rcvbuf,
        "msgmnb": _read_int("/proc/sys/kernel/msgmnb"),
        "msgmax": _read_int("/proc/sys/kernel/msgmax"),
        "sigrtmin": int(getattr(signal, "SIGRTMIN", 0)),
        "sigrtmax": int(getattr(signal, "SIGRTMAX", 0)),
        "rlimit_sigpending": resource.getrlimit(resource.RLIMIT_SIGPENDING)[0],
        "cap_sys_resource": _has_cap_sys_resource(),
        "start_methods": ",".join(multiprocessing.get_all_start_methods()),
        "cpus": os.cpu_count(),
    }


def number(name: str) -> int:
    """A probed limit that must be an integer (raises KeyError for unknown names)."""
    value = probe()[name]
    if not isinstance(value, int):
        raise TypeError(f"limit {name} is {value!r}, not a number")
    return value


def pipe_buf() -> int:
    return number("pipe_buf")


def pipe_capacity() -> int:
    return number("pipe_capacity")


def page_size() -> int:
    return number("page_size")


def filesystem_type(path: str) -> str:
    """The type (``tmpfs``, ``ext4``, ``nfs4`` …) of the mount holding ``path``, from /proc/self/mounts;
    ``""`` when it cannot be told."""
    real = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                inside = real == mount or real.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best):  # the deepest mount wins (later ones shadow earlier)
                    best, kind = mount, fields[2]
    except OSError:
        return ""
    return kind


def socket_buffers() -> List[int]:
    """The socket buffer sizes of this machine (defaults and a fresh socketpair's), distinct."""
    names = ("net_rmem_default", "net_wmem_default", "unix_stream_sndbuf", "unix_stream_rcvbuf")
    found = {probe()[n] for n in names}
    return sorted(v for v in found if isinstance(v, int) and v > 0)
