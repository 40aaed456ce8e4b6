"""The shared-map contract: a key-value map that several processes read and write.

A map channel is made, empty, by ``setup(scope)`` in the parent.  Each worker
then calls ``channel.open()`` for a handle of its own (by name for
``wiring="named"`` backends, so spawned workers and fresh interpreters can
attach; after fork for ``"inherit"`` ones).  Keys are short str (1 to
:data:`MAX_KEY_LEN` characters of :data:`KEY_ALPHABET`), values are bytes,
the empty value included.

The rules below are what the checks hold a backend to.  They rest on what the
building blocks promise: ``mmap(2)`` MAP_SHARED (a store is visible to every
mapping at once), ``flock(2)`` (an exclusive lock excludes every other open
file description, a shared one only exclusive holders), and SQLite's
transactions (Python docs ``sqlite3``; sqlite.org "Atomic Commit", "File
Locking And Concurrency": a reader sees a committed state whole).  The
contract paraphrases them; it quotes none.

Besides the kind's attributes a map backend states two limits, which the
checks probe at and just past the boundary:

* ``max_value_size``  the longest value ``set`` accepts, in bytes;
* ``capacity``        how many keys the map holds at most (filled and probed only up to
                      1024 keys; a larger capacity is taken on trust).
"""

from __future__ import annotations

import string
from typing import ContextManager, List, Optional

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import IntAttribute, Kind, register_kind

LOCKED_UPDATE = "locked_update"
NAMED_ATTACH = "named_attach"
THREAD_SAFE = "thread_safe"

#: Keys every backend must accept: 1 to MAX_KEY_LEN characters of KEY_ALPHABET.
MAX_KEY_LEN = 64
KEY_ALPHABET = string.ascii_letters + string.digits + "_-."
#: The largest max_value_size a backend may state (16 MiB).
MAX_VALUE_SIZE = 1 << 24

MAP = register_kind(
    Kind(
        name="map",
        summary="a key-value map shared by processes: each one opens a handle and gets, sets and deletes keys",
        capabilities={
            LOCKED_UPDATE: "handle.locked() is a context manager that holds a lock excluding every other "
            "handle's locked() for the whole of its body, so a get and a set inside it are one atomic "
            "read-modify-write",
            NAMED_ATTACH: "an unrelated process (a fresh interpreter that unpickles the channel) opens the map "
            "by its name",
            THREAD_SAFE: "handles may be opened and used from several threads of one process (one handle per "
            "thread)",
        },
        channel_members=("open",),
        # max_value_size: the limits check writes a value of that size and one byte more,
        # so it is kept to what a worker can allocate many times over.
        int_attributes=(IntAttribute("max_value_size", 1, MAX_VALUE_SIZE), IntAttribute("capacity", 1, 2**31 - 1)),
    )
)


class MapHandle(Protocol):
    """One process's (or thread's) view of the map.  Every call reads or writes the
    shared map itself: a handle keeps no copy that could go stale (mmap(2)
    MAP_SHARED stores are seen by every mapping; an SQLite read outside a
    transaction starts from the latest commit)."""

    def get(self, key: str) -> Optional[bytes]:
        """The value stored under ``key`` now, or None when the key is absent (as
        ``dict.get`` answers a missing key; Python docs "Mapping Types").

        The value is one that some ``set`` stored, whole: never part of one value
        and part of another, even while another process is setting the key (a
        reader that holds the lock the writer holds, flock(2), or reads a
        committed SQLite state, sees no write half done)."""

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``; once this returns, a ``get`` in any process sees it.

        A value longer than ``max_value_size``, or a new key when the map already
        holds ``capacity`` keys, raises an exception (``ValueError`` and
        ``MapFull`` in the references) and changes nothing: never a stored
        prefix, never a silently dropped key (SQLite answers an over-long BLOB
        with SQLITE_TOOBIG, "Limits In SQLite"; a memoryview slice assignment
        cannot resize, Python docs).  Replacing the value of a key already
        present is not limited by ``capacity``."""

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was present (``dict.pop(key, None)`` semantics)."""

    def keys(self) -> List[str]:
        """Every key present now, in any order."""

    def locked(self) -> ContextManager[None]:
        """(``locked_update``) A context manager holding the map's lock for its whole body:
        get, set and delete of this handle inside the body run under it, and no other
        handle's ``locked()`` body runs at the same time.  The references take
        flock(2) LOCK_EX (one holder per lock at a time) and SQLite BEGIN IMMEDIATE
        (the write lock, taken at BEGIN rather than at the first write)."""

    def close(self) -> None:
        """Drop this handle; the map and its contents live on (as closing a
        SharedMemory instance leaves the block for others, Python docs; unlinking
        is the channel's teardown)."""


class MapChannel(Protocol):
    def open(self) -> MapHandle:
        """A new handle in this process (attaching by name where the backend is named)."""

    def detach(self) -> None:
        """Drop inherited references this process did not open."""

    def teardown(self) -> None:
        """Remove the map and everything it created; called once, in the parent, after the example."""


class MapBackend(Protocol):
    """The map-specific attributes of a backend (besides name, kind, capabilities, wiring, setup)."""

    max_value_size: int
    capacity: int


class MapFull(Exception):
    """What the references raise for a new key in a full map (any exception is a refusal to the checks)."""
