"""The size strategies: stable minimal examples, boundaries drawn often, depth past the
kernel's buffers, payloads printed as ``Blob(size, seed)``, and byte mismatches told by
where they differ."""

from __future__ import annotations

import random
import re
from typing import Callable, List

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from ipc_impls.broken import all_exhibits
from ipc_specs import Harness, Violation, check, limits
from ipc_specs.invariant import describe_bytes_mismatch, expect, shown_against
from ipc_specs.queues.common import UNBOUNDED_CAP, payload_sizes, unbounded_top
from ipc_specs.queues.protocol import QueueLimits
from ipc_specs.strategies import Blob, anchored_integers, blobs, boundary_sizes, kernel_edges, read_sizes

DEEP = 4 * max(limits.socket_buffers() + [limits.pipe_capacity()])


def _minimum(strategy: st.SearchStrategy[int], condition: Callable[[int], bool], seed: int) -> int:
    return find(strategy, condition, settings=settings(database=None, max_examples=2000), random=random.Random(seed))


def _draws(strategy: st.SearchStrategy[int], count: int = 1000) -> List[int]:
    seen: List[int] = []

    @settings(database=None, max_examples=count, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=1, max_size=4))
    def collect(values: List[int]) -> None:
        seen.extend(values)

    collect()
    return seen[:count] if len(seen) >= count else seen


@pytest.mark.parametrize("threshold", [0, 100, limits.pipe_buf(), limits.pipe_buf() + 7, limits.pipe_capacity() + 3,
                                       max(limits.socket_buffers() + [0]) + 11])
def test_a_failure_above_x_always_shrinks_to_x_plus_one(threshold: int) -> None:
    """Whatever failing size is found first (eight random starts), the minimum is the same."""
    sizes = boundary_sizes(max_size=DEEP)
    minima = {_minimum(sizes, lambda n: n > threshold, seed) for seed in range(8)}
    assert minima == {threshold + 1}


def test_a_failure_inside_a_band_shrinks_to_its_lower_edge() -> None:
    """Not only thresholds: a bug between two sizes shrinks to the same smallest one too."""
    pb = limits.pipe_buf()
    minima = {_minimum(read_sizes(), lambda n: pb < n <= 3 * pb, seed) for seed in range(6)}
    assert minima == {pb + 1}


def test_boundaries_are_drawn_often() -> None:
    edges = set(kernel_edges()) | {0, DEEP - 1, DEEP}
    draws = _draws(boundary_sizes(max_size=DEEP))
    on_edge = sum(d in edges for d in draws)
    assert len(draws) >= 500 and on_edge >= 0.2 * len(draws), (on_edge, len(draws))


def test_sizes_go_past_the_socket_and_pipe_buffers() -> None:
    """A receive that returns only what one buffer held must meet messages larger than it."""
    deepest = max(limits.socket_buffers() + [limits.pipe_capacity()])
    draws = _draws(boundary_sizes(max_size=DEEP))
    assert sum(d > deepest for d in draws) >= 0.1 * len(draws)
    assert all(0 <= d <= DEEP for d in draws)


def test_anchored_integers_stay_in_range_and_reach_every_anchor() -> None:
    draws = set(_draws(anchored_integers(3, 40, [3, 10, 11, 40, 99])))
    assert draws <= set(range(3, 41)) and {3, 10, 11, 40} <= draws


def test_blob_prints_as_size_and_seed() -> None:
    assert repr(Blob(4097, 3)) == "Blob(4097, 3)"
    assert repr(Blob(5, zeros=True)) == "Blob(5, zeros=True)" and Blob(5, 9, zeros=True).data == bytes(5)
    assert len(Blob(4097, 3).data) == 4097 and Blob(4097, 3).data == Blob(4097, 3).data


def test_hypothesis_prints_a_drawn_blob_as_blob() -> None:
    @settings(database=None, max_examples=200, phases=[Phase.generate, Phase.shrink])
    @given(plan=st.lists(blobs(max_size=DEEP), min_size=1, max_size=3), size=boundary_sizes(max_size=DEEP))
    def fails(plan: List[Blob], size: int) -> None:
        assert sum(b.size for b in plan) < 5000

    with pytest.raises(AssertionError) as caught:
        fails()
    shown = "\n".join(getattr(caught.value, "__notes__", []))
    # How far the list shrinks is Hypothesis's business (it may stop at [Blob(905, 0), Blob(4095, 0)]);
    # what is asserted is how a Blob prints.
    assert re.search(r"plan=\[Blob\(\d+, \d+\)", shown) and "lambda" not in shown and "Blob(size=" not in shown, shown


@pytest.mark.parametrize("name", ["broken-single-read-pipe-bytes_arrive_complete_and_in_order",
                                  "broken-framed-one-recv-each_receive_returns_one_whole_message"])
def test_a_twins_failing_example_prints_blobs(name: str) -> None:
    exhibit = next(e for e in all_exhibits() if e.name == name)
    harness = Harness(deadline_s=5.0, profile="ci", shrink=False, replays=0)  # printing needs no shrinking
    try:
        with pytest.raises(Violation) as caught:
            check(exhibit.backend, exhibit.breaks, placement=exhibit.placement, harness=harness)
    finally:
        assert harness.close() == []
    # The example is shown in Hypothesis's notes ("Falsifying example: ...") or, when the
    # twin's cut frame left the reader waiting and the harness called a hang, in the message
    # ("Hanging example (not shrunk): ..."): which one depends on timing, the Blob's repr does not.
    shown = "\n".join([str(caught.value), *getattr(caught.value, "__notes__", [])])
    assert "Blob(" in shown and "lambda" not in shown and "Blob(size=" not in shown, shown


def test_mismatch_names_the_first_differing_byte() -> None:
    want = bytes(8192)
    got = bytes(4094) + b"\x1f" + bytes(4097)
    text = describe_bytes_mismatch(got, want)
    assert text.startswith("first difference at byte 4094 (got 0x1f, want 0x00); both 8192 bytes")
    assert text.count("8192") == 1


def test_mismatch_of_a_cut_message_says_prefix() -> None:
    want = Blob(8192, 1).data
    text = describe_bytes_mismatch(want[:4094], want)
    assert text.startswith("got is a prefix of want (4094 of 8192 bytes); missing from byte 4094: ")
    assert want[4094:4095].hex() in text and text.endswith("…")


def test_mismatch_of_two_glued_messages_says_extra() -> None:
    text = describe_bytes_mismatch(b"abcdef", b"abc")
    assert text == "got has 3 bytes more than want (6 bytes, want 3); extra from byte 3: 64 65 66"


def test_mismatch_of_different_lengths_and_bytes() -> None:
    text = describe_bytes_mismatch(b"abX", b"abcd")
    assert text == ("first difference at byte 2 (got 0x58, want 0x63); got 3 bytes, want 4; "
                    "from there got 58, want 63 64")


def test_no_24_byte_prefix_is_printed_twice() -> None:
    want = Blob(100, 2).data
    text = describe_bytes_mismatch(want[:60] + b"\x00" * 40, want)
    assert repr(want[:24])[2:-1] not in text


def test_expect_with_want_shows_where_bytes_part() -> None:
    with pytest.raises(Violation) as caught:
        expect(False, "some_invariant", got=b"abcX", want=b"abcd", expected="the writer's bytes", call="read")
    assert caught.value.got == ("first difference at byte 3 (got 0x58, want 0x64); both 4 bytes; "
                                "from there got 58, want 64")
    assert shown_against("EAGAIN", b"ab") == "'EAGAIN'" and shown_against(b"ab", b"ab") == "the same 2 bytes"


class _Claims:
    """Enough of a Case for the payload strategies: it claims everything."""

    def claims(self, capability: str) -> bool:
        return True


def test_queue_payloads_without_a_maximum_go_past_every_buffer() -> None:
    top = unbounded_top()
    deepest = max(limits.socket_buffers() + [limits.pipe_capacity()])
    assert deepest < top <= UNBOUNDED_CAP
    draws = _draws(payload_sizes(_Claims(), QueueLimits()))  # type: ignore[arg-type]
    assert max(draws) <= top and sum(d > deepest for d in draws) >= 0.1 * len(draws)


def test_queue_payloads_with_a_maximum_hit_it_often() -> None:
    draws = _draws(payload_sizes(_Claims(), QueueLimits(max_message_size=16384)))  # type: ignore[arg-type]
    assert max(draws) == 16384
    assert sum(d in (16383, 16384) for d in draws) >= 0.05 * len(draws)
