"""Imports every family so that its kind and invariants are registered.

A new family adds one import here; nothing else needs to know it exists.
The order here is the order of the catalogue and of the matrix.
"""

# ruff: noqa: I001  (the order is meaningful: see above)

from . import streams  # noqa: F401
from . import shm  # noqa: F401
from . import files  # noqa: F401
from . import semaphores  # noqa: F401
from . import queues  # noqa: F401
from . import signals, timeouts  # noqa: F401
from . import arrow  # noqa: F401
from . import maps  # noqa: F401
