"""Repository-level pytest configuration.

The conformance plugin itself is registered by the ``pytest11`` entry point of
the installed package (``pip install -e .``); this file only adds what the
project's own tests need.
"""

from __future__ import annotations

from typing import List

import pytest

pytest_plugins = ["pytester"]

#: Self-test modules whose module fixture is a long sub-run of the suite (minutes under load).
RUN_FIRST = ("test_chaos.py",)


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Move the chaos self-test to the front of the run.

    A module fixture is made once per xdist worker that runs one of the module's tests, and
    ``-n 2`` (--dist load) hands out tests in chunks: from the middle of the run a chunk could
    end inside test_chaos.py and both workers would each run the chaos sub-run.  The first chunk
    of the first worker holds a quarter of that worker's share, so at the front the module
    lands on one worker, and its minutes overlap the rest of the run instead of trailing it.
    (xdist's --dist loadgroup would say this directly, but pytest-xdist 3.8 cannot rename the
    items of pytest 9, so its groups are silently ignored there.)
    """
    items[:] = sorted(items, key=lambda item: item.path.name not in RUN_FIRST)
