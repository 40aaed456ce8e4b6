"""Judging exactly-once delivery and per-producer order from a recorded history.

Pure functions over plain records, so they can be unit-tested without any
process.  Each producer numbers its messages 0, 1, 2, …; each consumer records,
for every message it got, when its receive was invoked and when it returned.
A receive takes its message out of the queue somewhere inside that interval,
so the only order that can be proven is causal: if the receive of ``P0#2``
*returned* before the receive of ``P0#1`` was *invoked*, the queue handed out
``P0#2`` first.  No global order between producers is ever assumed.

Every function returns the smallest contradiction as one sentence, or None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

MsgId = Tuple[int, int]  # (producer, sequence number)


@dataclass(frozen=True)
class Receipt:
    consumer: str
    msg: Optional[MsgId]  # None: the payload carried no valid id
    invoked_ms: float
    returned_ms: float
    raw: str = ""  # what was received, for messages without a valid id


def label(msg: MsgId) -> str:
    return f"P{msg[0]}#{msg[1]}"


def find_phantom(receipts: Sequence[Receipt], sent: Dict[int, int]) -> Optional[Tuple[str, List[Receipt]]]:
    """A received message that no producer sent (``sent`` maps producer -> count)."""
    for r in receipts:
        if r.msg is None or r.msg[1] < 0 or r.msg[1] >= sent.get(r.msg[0], 0):
            what = label(r.msg) if r.msg is not None else r.raw
            return f"message {what} received by {r.consumer} at t={r.returned_ms:.3f}ms was never sent", [r]
    return None


def find_duplicate(receipts: Sequence[Receipt]) -> Optional[Tuple[str, List[Receipt]]]:
    """The earliest second delivery of one message."""
    first: Dict[MsgId, Receipt] = {}
    for r in sorted(receipts, key=lambda r: r.returned_ms):
        if r.msg is None:
            continue
        if r.msg in first:
            a = first[r.msg]
            return (f"message {label(r.msg)} received twice: by {a.consumer} at t={a.returned_ms:.3f}ms, "
                    f"by {r.consumer} at t={r.returned_ms:.3f}ms"), [a, r]
        first[r.msg] = r
    return None


def find_loss(receipts: Sequence[Receipt], sent: Dict[int, int]) -> Optional[str]:
    """The first message (lowest producer, then sequence) nobody received."""
    got = {r.msg for r in receipts}
    for producer in sorted(sent):
        for seq in range(sent[producer]):
            if (producer, seq) not in got:
                return f"message {label((producer, seq))} was sent but never received"
    return None


def find_reorder(receipts: Sequence[Receipt]) -> Optional[Tuple[str, List[Receipt]]]:
    """Two messages of one producer provably handed out in the wrong order.

    For each producer, walking its messages by sequence number, the receive of
    a later message must not return before the receive of an earlier one was
    invoked.  Reports the pair with the smallest later sequence number.
    """
    by_producer: Dict[int, List[Receipt]] = {}
    for r in receipts:
        if r.msg is not None:
            by_producer.setdefault(r.msg[0], []).append(r)
    found: Optional[Tuple[int, Receipt, Receipt]] = None
    for producer in sorted(by_producer):
        latest: Optional[Receipt] = None  # the earlier message whose receive was invoked last
        for r in sorted(by_producer[producer], key=lambda r: r.msg or (0, 0)):
            if latest is not None and r.returned_ms < latest.invoked_ms:
                seq = r.msg[1] if r.msg else 0
                if found is None or seq < found[0]:
                    found = (seq, latest, r)
                break
            if latest is None or r.invoked_ms > latest.invoked_ms:
                latest = r
    if found is None:
        return None
    _, early, late = found
    assert early.msg is not None and late.msg is not None
    where = f"by {late.consumer}" if early.consumer == late.consumer else \
        f"by {late.consumer} at t={late.returned_ms:.3f}ms, before {early.consumer} asked at t={early.invoked_ms:.3f}ms"
    return f"{label(late.msg)} received before {label(early.msg)} {where}", [early, late]


def first_contradiction(receipts: Sequence[Receipt], sent: Dict[int, int], *,
                        check_order: bool) -> Optional[Tuple[str, List[Receipt]]]:
    """Phantoms, then duplicates, then losses, then (optionally) per-producer order."""
    for found in (find_phantom(receipts, sent), find_duplicate(receipts)):
        if found is not None:
            return found
    lost = find_loss(receipts, sent)
    if lost is not None:
        return lost, []
    return find_reorder(receipts) if check_order else None
