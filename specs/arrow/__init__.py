"""Arrow tables shared between processes.  ``protocol`` states the contract,
``checks`` the invariants, ``roles`` what workers run, ``strategies`` and
``model`` the pyarrow-free table descriptions the parent draws and judges, and
``tables`` (imported in workers only) turns them into pyarrow tables and back."""

from . import checks  # noqa: F401  (register the invariants)
from .protocol import ARROW, ArrowStore, TableReader, TableWriter

__all__ = ["ARROW", "ArrowStore", "TableReader", "TableWriter"]
