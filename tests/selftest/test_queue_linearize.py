"""The queue history judge on hand-made histories: each contradiction is found and named."""

from ipc_specs.queues.linearize import Receipt, first_contradiction


def r(consumer: str, producer: int, seq: int, invoked: float, returned: float) -> Receipt:
    return Receipt(consumer, (producer, seq), invoked, returned, f"P{producer}#{seq}")


def test_clean_history_has_no_contradiction() -> None:
    got = [r("C0", 0, 0, 1, 2), r("C1", 1, 0, 1, 3), r("C0", 0, 1, 3, 4)]
    assert first_contradiction(got, {0: 2, 1: 1}, check_order=True) is None


def test_duplicate_names_both_consumers() -> None:
    text, _ = first_contradiction([r("C0", 1, 3, 1, 2), r("C2", 1, 3, 5, 6)], {1: 4}, check_order=False) or ("", [])
    assert text.startswith("message P1#3 received twice: by C0 at t=2.000ms, by C2 at t=6.000ms")


def test_loss_and_phantom() -> None:
    assert first_contradiction([], {0: 1}, check_order=False)[0] == "message P0#0 was sent but never received"
    text, _ = first_contradiction([r("C0", 5, 0, 1, 2)], {0: 0}, check_order=False) or ("", [])
    assert "P5#0" in text and "never sent" in text


def test_reorder_within_and_across_consumers() -> None:
    text, _ = first_contradiction([r("C1", 0, 2, 1, 2), r("C1", 0, 1, 3, 4), r("C1", 0, 0, 0, 0.5)],
                                  {0: 3}, check_order=True) or ("", [])
    assert text == "P0#2 received before P0#1 by C1"
    # Overlapping receives in two consumers prove nothing; disjoint ones do.
    assert first_contradiction([r("C0", 0, 1, 1, 5), r("C1", 0, 0, 2, 6)], {0: 2}, check_order=True) is None
    text, _ = first_contradiction([r("C0", 0, 1, 1, 2), r("C1", 0, 0, 3, 4)], {0: 2}, check_order=True) or ("", [])
    assert text.startswith("P0#1 received before P0#0 by C0")
