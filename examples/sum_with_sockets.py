"""Sum a series over several processes, returning partial sums over sockets.

Mechanism: an AF_UNIX stream socket bound in a private directory made by
tempfile.mkdtemp() (mode 0700, so no other user can connect). The parent
listens before forking; each worker connects, sends one length-prefixed
message (8-byte header: worker index and payload length, then the partial sum
as ASCII float.hex()) and closes. The parent accepts one connection per worker.

Pitfall of the original: it treated ``conn.recv(1024)`` as one whole
message. A stream socket has no message boundaries: recv() may return part of
a message, or (on a reused connection) parts of two. Also avoided here:
listening on all interfaces with a fixed port (open to other hosts, prone to
EADDRINUSE) instead of a socket in a private directory.

Why this version is correct: every message carries its length and
recv_exactly() loops until it has that many bytes, treating early EOF as a
failed worker; sendall() loops over short sends on the other side. The socket
lives in a private directory (removed in ``finally``) and accept/recv are
bounded by a timeout, so a dead or hung worker cannot block the parent.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import time

import _common

HEADER = struct.Struct(">II")  # worker index, payload length


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Receive exactly `size` bytes, looping over partial recv() results."""
    buffer = bytearray()
    while len(buffer) < size:
        chunk = sock.recv(size - len(buffer))
        if not chunk:
            raise _common.WorkerFailed(f"connection closed after {len(buffer)} of {size} bytes")
        buffer += chunk
    return bytes(buffer)


def worker(index: int, path: str, terms: int, processes: int) -> None:
    payload = _common.worker_sum(index, terms, processes).hex().encode("ascii")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(HEADER.pack(index, len(payload)) + payload)


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    deadline = time.monotonic() + args.timeout
    directory = tempfile.mkdtemp(prefix=_common.NAME_PREFIX)
    partials: dict[int, float] = {}
    try:
        path = os.path.join(directory, "results.sock")
        if len(os.fsencode(path)) >= 108:  # sun_path limit on Linux
            raise OSError(f"socket path too long, set TMPDIR to a shorter directory: {path}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener, _common.Workers() as workers:
            listener.bind(path)
            listener.listen(min(args.processes, socket.SOMAXCONN))
            listener.settimeout(0.1)  # short, so we notice failed workers promptly
            for index in range(args.processes):

                def child(i: int = index) -> None:
                    listener.close()  # the child only connects
                    worker(i, path, args.terms, args.processes)

                workers.start(index, child)
            while len(partials) < args.processes:
                workers.check()  # a failed worker will never connect: stop now
                if time.monotonic() > deadline:
                    raise TimeoutError(f"only {len(partials)} of {args.processes} workers reported")
                try:
                    conn, _ = listener.accept()
                except socket.timeout:  # an alias of TimeoutError since Python 3.10
                    continue
                with conn:
                    conn.settimeout(max(0.1, deadline - time.monotonic()))
                    index, length = HEADER.unpack(recv_exactly(conn, HEADER.size))
                    value = float.fromhex(recv_exactly(conn, length).decode("ascii"))
                    if index in partials or index >= args.processes:
                        raise _common.WorkerFailed(f"unexpected message from worker {index}")
                    partials[index] = value
            workers.wait(deadline)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    _common.finish(partials, args.terms, args.processes)


if __name__ == "__main__":
    _common.run(main)
