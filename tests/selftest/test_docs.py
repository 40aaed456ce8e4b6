"""Documentation generated from the code must match the code."""

from __future__ import annotations

import os
import re

import pytest

from ipc_conformance import plugin
from ipc_conformance.catalogue import render, with_index
from ipc_specs.harness.placements import PLACEMENTS
from ipc_specs.harness.run import PROFILES

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def test_the_catalogue_is_up_to_date() -> None:
    assert read("docs", "INVARIANTS.md") == render(), "run `ipc-conformance catalogue --write`"


def test_the_readme_index_lists_every_invariant() -> None:
    readme = read("README.md")
    assert readme == with_index(readme), "run `ipc-conformance catalogue --write`"


def test_every_package_directory_is_packaged() -> None:
    listed = set(re.search(r"^packages = \[(.*?)\]$", read("pyproject.toml"), re.M).group(1)
                 .replace('"', "").replace(" ", "").split(","))
    for top, name in (("specs", "ipc_specs"), ("ipc_impls", "ipc_impls")):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files and "__pycache__" not in dirpath:
                rel = os.path.relpath(dirpath, os.path.join(ROOT, top))
                package = name if rel == "." else f"{name}.{rel.replace(os.sep, '.')}"
                assert package in listed, f"{package} is missing from packages in pyproject.toml"


@pytest.mark.parametrize(("ours", "theirs"), [(plugin.PROFILES, tuple(sorted(PROFILES))),
                                               (plugin.PLACEMENTS, PLACEMENTS)])
def test_plugin_constants_match_the_specs(ours: tuple, theirs: tuple) -> None:  # type: ignore[type-arg]
    assert ours == theirs
