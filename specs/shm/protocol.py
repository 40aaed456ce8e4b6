"""The shared-memory contract: anonymous and file-backed ``mmap``,
``multiprocessing.shared_memory``, ``posix_ipc`` and ``sysv_ipc`` segments.

A shm channel is one segment of memory that several processes map.  The parent
makes it with ``create(size)`` before any worker starts; workers reach it by
inheritance (``wiring="inherit"``, an anonymous mapping across fork) or by name.
Bytes carry no synchronisation of their own: a write is visible to the others,
but *when* they look is up to something else (an event, a lock), which is why
every check orders its processes with harness events or a file lock.

Besides the kind's attributes, a shm backend states ``fill_byte``: the value of
every byte of a fresh segment (0 for POSIX, multiprocessing and mmap, which
grow the object with ftruncate; sysv_ipc's ``init_character``, a space by default).
"""

from __future__ import annotations

import os

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import IntAttribute, Kind, register_kind
from ..harness.resources import register_remover

NAMED_ATTACH = "named_attach"
EXACT_SIZE = "exact_size"
READ_ONLY_ATTACH = "read_only_attach"
UNLINKABLE = "unlinkable"
TRUNCATABLE = "truncatable"
SURVIVES_ATTACHER_EXIT = "survives_attacher_exit"
ATTACHER_TRACKER_UNLINKS = "attacher_tracker_unlinks"

SHM = register_kind(
    Kind(
        name="shm",
        summary="one segment of memory mapped by several processes; writes are visible to every mapping",
        capabilities={
            NAMED_ATTACH: "an unrelated process (spawned, or a fresh interpreter) attaches by the channel's name",
            EXACT_SIZE: "segment.length() equals the requested size exactly (never rounded up to a page)",
            READ_ONLY_ATTACH: "attach(read_only=True) gives a mapping whose writes raise and change nothing",
            UNLINKABLE: "channel.unlink() removes the name: live mappings stay valid, new attaches raise "
            "FileNotFoundError, and channel.exists() is False once the last mapping is closed",
            TRUNCATABLE: "channel.truncate(n) shrinks the object under live mappings (ftruncate), so touching "
            "a mapped page past the new end raises SIGBUS",
            SURVIVES_ATTACHER_EXIT: "a fresh interpreter that attaches, detaches and exits leaves the segment "
            "in place",
            ATTACHER_TRACKER_UNLINKS: "a declared hazard, not a feature: a fresh interpreter that attaches "
            "registers the segment with its own multiprocessing resource tracker, which unlinks it when that "
            "interpreter exits (CPython gh-82300)",
        },
        channel_members=("create", "attach"),
        int_attributes=(IntAttribute("fill_byte", 0, 255),),
    )
)


class Segment(Protocol):
    """One process's mapping of the segment."""

    def read(self, offset: int, n: int) -> bytes:
        """The ``n`` bytes at ``offset`` as they are in the shared memory now (never a cached copy)."""

    def write(self, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset``; raise (and change nothing) on a read-only mapping."""

    def length(self) -> int:
        """How many bytes this mapping covers: at least the requested size."""

    def close(self) -> None:
        """Unmap (and detach); the segment itself lives on."""


class ShmChannel(Protocol):
    def create(self, size: int) -> None:
        """Make the segment (exclusively, mode 0600); called once, in the parent, before workers start."""

    def attach(self, *, read_only: bool = False) -> Segment:
        """Map the segment in this process; raise ``FileNotFoundError`` when its name is gone."""

    def unlink(self) -> None:
        """Remove the name (``unlinkable``)."""

    def exists(self) -> bool:
        """Whether the segment can still be reached (``unlinkable``)."""

    def truncate(self, size: int) -> None:
        """Shrink the backing object to ``size`` bytes under every live mapping (``truncatable``)."""

    def detach(self) -> None:
        """Drop inherited references this process did not attach."""

    def teardown(self) -> None:
        """Remove the segment; called once, in the parent, after the example."""


# --- removers for journalled objects left by a crashed run ---------------------------------
def remove_posix_shm(name: str) -> None:
    """POSIX shm objects (also multiprocessing's) are files of the tmpfs at /dev/shm (shm_overview(7))."""
    try:
        os.unlink(os.path.join("/dev/shm", name.lstrip("/")))
    except FileNotFoundError:
        pass


def remove_sysv_shm(ident: str) -> None:
    import sysv_ipc  # type: ignore[import-not-found]  # only needed when such a segment was journalled

    try:
        sysv_ipc.remove_shared_memory(int(ident))
    except (sysv_ipc.ExistentialError, ValueError):
        pass


register_remover("posix_shm", remove_posix_shm)
register_remover("sysv_shm", remove_sysv_shm)
