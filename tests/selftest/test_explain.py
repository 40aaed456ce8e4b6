"""``ipc-conformance explain`` finds what a learner types: ids, substrings, exhibits, near misses."""

from __future__ import annotations

from typing import Any, List

import pytest

from ipc_conformance import explain as ex


@pytest.fixture
def explained(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    """The invariants (and exhibit) explain would run live, without running them."""
    seen: List[Any] = []
    monkeypatch.setattr(ex, "_explain_one", lambda inv, deadline_s, only="": seen.append((inv.id, only)) or 0)
    return seen


@pytest.mark.parametrize(("query", "want"), [
    ("eof_after_last_writer_closes", ("eof_after_last_writer_closes", "")),
    ("EOF_After_Last", ("eof_after_last_writer_closes", "")),
    ("broken-poison-pill", ("eof_after_last_writer_closes", "broken-poison-pill")),
])
def test_one_match_is_explained(query: str, want: Any, explained: List[Any]) -> None:
    assert ex.explain(query) == 0
    assert explained == [want]


def test_a_family_lists_its_invariants(explained: List[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.explain("semaphore") == 0 and explained == []
    assert "holders_never_exceed_value" in capsys.readouterr().out


def test_a_near_miss_is_suggested(explained: List[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.explain("holders_never_exceeds_values") == 2
    out = capsys.readouterr().out
    assert "Did you mean: holders_never_exceed_value" in out and "explain exhibits" in out


def test_the_gallery_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert ex.explain("exhibits") == 0
    out = capsys.readouterr().out
    assert "broken-poison-pill" in out and "breaks eof_after_last_writer_closes" in out
