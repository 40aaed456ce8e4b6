"""The family registry, on top of the package: every family, in the catalogue's order.

``families.py`` imports each family package, whose modules register their kind
(``backend.register_kind``) and invariants (``invariant.invariant``) as they are
imported.  Those registries sit below the families, so they cannot import them;
this module can, and installs the loader they call when asked for everything
(``invariant.load_all_families``).  It imports the families lazily: importing the
package must stay cheap (the pytest plugin is a guest in unrelated runs).
"""

from __future__ import annotations

import types
from typing import Dict

from .backend import kind_packages, kinds
from .invariant import all_invariants, get_invariant, install_family_loader

# The catalogue's views are defined beside the registries they read (so that their old
# import paths, ipc_specs.invariant and ipc_specs.backend, keep working) and gathered here.
__all__ = ["all_invariants", "family_order", "get_invariant", "kinds", "load_all_families"]


def load_all_families() -> None:
    """Import every spec module so that its kind and invariants register themselves."""
    from . import families  # noqa: F401  (imported for its side effect)


def family_order() -> Dict[str, int]:
    """Kind name -> its position in ``families.py`` (the catalogue's and the matrix's
    order), whichever module happened to be imported first."""
    from . import families

    packages = [m.__name__ for m in vars(families).values() if isinstance(m, types.ModuleType)]
    return {name: packages.index(pkg) if pkg in packages else len(packages)
            for name, pkg in kind_packages().items()}


# The registries below the families call these back (invariant.all_invariants, backend.kinds …).
install_family_loader(load_all_families, family_order)
