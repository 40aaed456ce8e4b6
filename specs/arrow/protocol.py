"""The Arrow-table store contract: one process puts a table, others get it back.

A store publishes a table in Arrow IPC form (stream or file format) in memory
that other processes can map, so that readers get the table *without copying*:
the buffers of the table they read are views of the shared mapping.  Because
that memory is shared, a reader's table is neither writable (it must not be
able to scribble on everyone's data) nor a snapshot: if a writer rewrites the
region in place, readers that already hold the table see the new bytes.

pyarrow is imported only inside workers: the parent draws
:class:`~.model.TableSpec` descriptions and judges plain data, so it can fork
without inheriting pyarrow's native threads (forking a process that has threads is
unsafe; the Python docs for os.fork say so, and CPython 3.12+ warns about it).
"""

from __future__ import annotations

from typing import Any, Tuple

try:
    from typing import Protocol
except ImportError:  # pragma: no cover
    from typing_extensions import Protocol  # type: ignore

from ..backend import Kind, register_kind

ZERO_COPY = "zero_copy"
READ_ONLY_VIEWS = "read_only_views"
LIVE_VIEW = "live_view"

ARROW = register_kind(
    Kind(
        name="arrow",
        summary="an Arrow table store: a writer puts a table, readers in other processes get an equal one",
        capabilities={
            ZERO_COPY: "get() allocates nothing from the Arrow memory pool and every buffer of the table it "
            "returns lies inside reader.region(), its mapping of the shared-memory object",
            READ_ONLY_VIEWS: "buffers of a table from get() are immutable and numpy or memoryview views of them "
            "refuse writes",
            LIVE_VIEW: "writer.rewrite(t) overwrites the published bytes in place, and tables already returned "
            "by get() show the new values (they are views, not snapshots)",
        },
        channel_members=("open_writer", "open_reader"),
    )
)

#: A ``pyarrow.Table``; typed loosely so that this module never imports pyarrow.
Table = Any


class TableWriter(Protocol):
    def put(self, table: Table) -> None:
        """Publish ``table``; once this returns, ``get()`` in any process returns an
        equal table (schema with metadata and time zones, values with NaN and nulls),
        until the channel is torn down, whether or not the writer is still alive."""

    def rewrite(self, table: Table) -> None:
        """(``live_view``) Overwrite the published bytes in place with ``table``, whose
        IPC form must have exactly the size of the one put; ``ValueError`` otherwise."""

    def close(self) -> None: ...


class TableReader(Protocol):
    def get(self) -> Table:
        """The published table.  With ``zero_copy`` its buffers are views of the shared mapping."""

    def region(self) -> Tuple[int, int]:
        """``(address, size)`` of the shared mapping in this process, once ``get()`` has run."""

    def close(self) -> None:
        """Unmap; call only after dropping every table (and view) from ``get()``."""


class ArrowStore(Protocol):
    def open_writer(self) -> TableWriter: ...

    def open_reader(self) -> TableReader: ...

    def detach(self) -> None: ...

    def teardown(self) -> None: ...
