"""Documentation generated from the code must match the code."""

from __future__ import annotations

import os
import re

import pytest

from ipc_conformance import options
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


@pytest.mark.parametrize(("ours", "theirs"), [(sorted(options.PROFILES), sorted(PROFILES)),
                                               (list(options.PLACEMENTS), list(PLACEMENTS))])
def test_plugin_constants_match_the_specs(ours: list, theirs: list) -> None:  # type: ignore[type-arg]
    assert ours == theirs


def test_the_default_profile_is_the_standard_one() -> None:
    from ipc_specs import Harness

    assert options.DEFAULT_PROFILE == "standard" == Harness.__init__.__kwdefaults__["profile"]


def test_the_readme_keeps_its_sections() -> None:
    readme = read("README.md")
    for heading in ("## Quickstart", "## Checking your own backend", "## Reading a failure", "## Layout",
                    "## Performance", "## Development"):
        assert heading in readme, f"README lost its {heading!r} section"


def test_writing_the_catalogue_keeps_the_rest_of_the_readme(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ipc_conformance.cli import main

    (tmp_path / "docs").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "ipc-conformance"\n')
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n<!-- invariant-index:start -->\nSTALE-INDEX-LINE\n"
                      "<!-- invariant-index:end -->\n\ntail\n")
    assert main(["catalogue", "--write", str(tmp_path / "docs" / "INVARIANTS.md")]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n") and text.endswith("\n\ntail\n") and "STALE-INDEX-LINE" not in text


def test_writing_the_catalogue_outside_this_repository_is_refused(tmp_path, capsys) -> None:  # type: ignore
    from ipc_conformance.cli import main

    (tmp_path / "docs").mkdir()
    mine = tmp_path / "docs" / "INVARIANTS.md"
    mine.write_text("a user's own document\n")
    assert main(["catalogue", "--write", str(mine)]) == 2
    assert mine.read_text() == "a user's own document\n"
    assert "not in a checkout of ipc-conformance" in capsys.readouterr().err
