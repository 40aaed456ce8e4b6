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


# --- every source names something a reader can look up -------------------------------------------
#: A man page with its section: pipe(7), sem_post(3), sigtimedwait(2).
MAN_PAGE = re.compile(r"\b([a-z_][a-z0-9_]*)\(([1-8])\)")
#: Other references a user can follow: a URL, a POSIX function page (named as ``POSIX name()``),
#: the Python docs, CPython's issues or sources, a PEP.
REACHABLE = re.compile(r"https?://|\bPOSIX(?:\.1[-\d]*)? [a-z_]+\(\)|\bPython docs\b|"
                       r"\bCPython (?:gh-\d+|bpo-\d+|Lib/|Modules/)|\bPEP \d+")
#: The internal catalogue the ids came from ships nowhere; spelled in two pieces so that a
#: grep for it over the repository finds no citation, this test included.
INTERNAL = "EDGE" + "_CASES"
#: Citations of documents that ship nowhere: that catalogue, its experiment numbers (E7) and sections (§9).
UNREACHABLE = re.compile(INTERNAL + r"|\bE\d+\b|§")


def sources() -> list:  # type: ignore[type-arg]
    from ipc_specs import all_invariants

    return [(inv.id, inv.source) for inv in all_invariants()]


@pytest.mark.parametrize(("inv_id", "source"), sources(), ids=[i for i, _ in sources()])
def test_every_source_names_something_reachable(inv_id: str, source: str) -> None:
    assert not UNREACHABLE.search(source), f"{inv_id} cites an internal document: {source}"
    assert MAN_PAGE.search(source) or REACHABLE.search(source), (
        f"{inv_id}: its source names no man page with a section, POSIX function page, URL, Python docs page, "
        f"CPython issue or file, or PEP: {source}")
    # POSIX pages are named by function (POSIX write()); name(2) is the Linux man page.
    assert not re.search(r"\bPOSIX [a-z_]+\(\d\)", source), f"{inv_id}: a POSIX page named like a man page"


def test_nothing_users_see_cites_the_internal_catalogue() -> None:
    for dirpath, _, files in os.walk(ROOT):
        if any(part in dirpath for part in (".git", "__pycache__", ".egg-info", ".tox", "venv", "build")):
            continue
        for name in files:
            if name.endswith((".py", ".md", ".toml", ".ini", ".txt", ".cfg", ".rst")):
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    assert INTERNAL not in f.read(), os.path.join(dirpath, name)


def test_cited_man_pages_exist() -> None:
    """Every name(N) a source cites is a page man can find (on a machine with the man pages)."""
    import shutil
    import subprocess

    def found(page: str, section: str) -> bool:
        return subprocess.run(["man", "-w", section, page], capture_output=True).returncode == 0

    if not shutil.which("man") or not found("pipe", "7"):
        pytest.skip("man or the Linux man pages (Debian: manpages, manpages-dev) are not installed")
    cited = {m for _, source in sources() for m in MAN_PAGE.findall(source)}
    missing = sorted(f"{page}({section})" for page, section in cited if not found(page, section))
    assert not missing, f"cited man pages that do not exist: {missing}"


def test_the_catalogue_does_not_depend_on_import_order() -> None:
    """The order is families.py's, even when a later family's modules are imported first
    (as a conformance run loading the map backends before anything else does)."""
    import subprocess
    import sys

    code = ("import ipc_impls.maps, ipc_specs.maps.checks\n"
            "from ipc_conformance.catalogue import render\n"
            f"print(open({os.path.join(ROOT, 'docs', 'INVARIANTS.md')!r}).read() == render())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stdout + out.stderr
