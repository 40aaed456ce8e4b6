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


class _LateSenderFirst:
    """A legal queue that reorders across producers: each endpoint sends at a priority fixed by
    the time of its first send (later senders overtake earlier ones), so one producer's messages
    stay in its order while a message sent after another producer finished may come first.
    (Before the end markers, the delivery checks failed it: their STOP overtook data.)"""

    @staticmethod
    def backend():  # type: ignore[no-untyped-def]
        import time

        import posix_ipc

        from ipc_impls.broken.queues import _posix_variant
        from ipc_impls.queues import PosixEndpoint
        from ipc_specs.queues import protocol as p

        class Endpoint(PosixEndpoint):
            lane = None

            def send(self, data, *, tag=None, timeout_ms=None):  # type: ignore[no-untyped-def]
                if self.lane is None:
                    self.lane = (time.monotonic_ns() // 1_000_000) % (posix_ipc.QUEUE_PRIORITY_MAX + 1)
                super().send(data, tag=self.lane, timeout_ms=timeout_ms)

            def receive(self, *, select=0, timeout_ms=None):  # type: ignore[no-untyped-def]
                time.sleep(0.002)  # a slow consumer: data is still queued when the producers are done
                return super().receive(select=select, timeout_ms=timeout_ms)[0], 0

        backend = _posix_variant("late-sender-first", Endpoint)
        backend.capabilities = backend.capabilities - {p.PRIORITIES}
        return backend


def test_a_stop_message_may_overtake_other_producers_data(quick_harness) -> None:  # type: ignore[no-untyped-def]
    """Nothing promises that a message queues behind data other processes sent before it (only
    one producer's order is promised), so the delivery checks must stop their consumers by
    per-producer end markers, not by a STOP sent after the producers finished."""
    from ipc_specs import check

    backend = _LateSenderFirst.backend()
    for inv in ("every_message_delivered_exactly_once", "each_producers_messages_arrive_in_its_order"):
        check(backend, inv, placement="fork", harness=quick_harness)
