"""Fixtures for the project's own tests (not part of the installed conformance suite)."""

from __future__ import annotations

from typing import Iterator

import pytest

from ipc_specs import Harness


@pytest.fixture(scope="module")
def quick_harness() -> Iterator[Harness]:
    """A short deadline, no shrinking, derandomized examples, no replays: verdicts, fast and repeatable.

    Replays only tell FAIL from FLAKY; either way the check raises the same Violation, which is
    all the gallery asserts (test_harness.py and test_chaos.py test the replays themselves).
    A replayed hang cost a second deadline.
    """
    h = Harness(deadline_s=3.0, profile="ci", shrink=False, replays=0)  # derandomized: the same examples every run
    yield h
    assert h.close() == []


@pytest.fixture(scope="session", autouse=True)
def _no_job_summary() -> Iterator[None]:
    """The runs the self-tests start append no summary to the CI job that runs them (session
    scope: before any module-scoped fixture starts a run)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GITHUB_STEP_SUMMARY", raising=False)
        yield


@pytest.fixture(autouse=True)
def _reports_follow_their_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every JSON report a self-test writes (under its tmp_path) is validated against
    ``report.schema.json`` (a bench's against ``bench.schema.json``) and every JUnit report
    parsed, whatever the test itself checks."""
    # Asked for before the test runs, so that tmp_path is torn down after this fixture.
    tmp = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if tmp is None:
        return
    import json
    import xml.etree.ElementTree as ET

    from ipc_conformance.schema import schema_for, validate

    for path in tmp.rglob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and str(data.get("schema", "")).startswith("ipc-conformance-"):
            assert validate(data, schema_for(data)) == [], f"{path} does not follow its schema ({data['schema']})"
    for path in tmp.rglob("*.xml"):
        root = ET.parse(str(path)).getroot()  # well-formed, or this raises
        assert root.tag != "testsuites" or root.get("name") == "ipc-conformance", path
