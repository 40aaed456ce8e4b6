"""Repository-level pytest configuration.

The conformance plugin itself is registered by the ``pytest11`` entry point of
the installed package (``pip install -e .``); this file only adds what the
project's own tests need.
"""

pytest_plugins = ["pytester"]
