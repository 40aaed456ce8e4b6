"""Invariants of one map's contents over time: dict semantics, limits that are reported,
and a map that outlives the processes that attach to it."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Tuple

from hypothesis import strategies as st

from .. import limits
from ..harness.run import Case, Role
from ..invariant import Level, expect, invariant
from ..strategies import Blob
from . import roles
from .checks import map_keys, shown, value_sizes, values
from .protocol import NAMED_ATTACH

FAMILY = "map"
#: The largest capacity the limits check fills (each key is one call); beyond it, taken on trust.
FILL_MAX = 1024


@invariant(
    "get_returns_the_last_value_set_or_none_once_deleted", family=FAMILY, level=Level.MUST,
    rule="In one process, get returns the last value set for the key (the empty value included) and None "
         "for a key never set or deleted; delete says whether the key was there; keys() lists the keys present.",
    source="Python docs 'Mapping Types — dict' and dbm (a persistent dict: keys and values stored, "
           "get of a missing key is its default); Python docs sqlite3",
    placements=["fork"],
)
def get_returns_the_last_value_set_or_none_once_deleted(backend: object, case: Case) -> None:
    def body(pool: List[str], ops: List[Tuple[Any, ...]]) -> None:
        ops = [(op[0], pool[op[1] % len(pool)]) + op[2:] if len(op) > 1 else op for op in ops]
        model: Dict[str, Blob] = {}
        want: List[object] = []
        for op in ops:
            if op[0] == "set":
                model[op[1]] = op[2]
                want.append(None)
            elif op[0] == "get":
                want.append(roles.digest(model[op[1]].data) if op[1] in model else None)
            elif op[0] == "delete":
                want.append(model.pop(op[1], None) is not None)
            else:
                want.append(sorted(model))
        out = case.run([Role("S", roles.run_ops, (ops,))])
        seen = out.value("S")
        calls = [e for e in out.history.of("S") if e.phase == "invoke" and e.op != "open"]
        for i, (got, expected) in enumerate(zip(seen, want)):
            expect(got == expected, case.invariant.id, got=f"{ops[i][0]} #{i} returned {_result(got)}",
                   expected=_result(expected), call=str(ops[i][0]),
                   history=out.history.format(calls[max(0, i - 3):i + 1]))

    index = st.integers(0, 3)
    op = st.one_of(st.tuples(st.just("set"), index, values(case)), st.tuples(st.just("get"), index),
                   st.tuples(st.just("delete"), index), st.just(("keys",)))
    pinned = [{"pool": ["k"], "ops": [("set", 0, Blob(0)), ("get", 0), ("keys",)]}]
    case.explore(body, pool=st.lists(map_keys(), min_size=1, max_size=4, unique=True),
                 ops=st.lists(op, min_size=1, max_size=20), examples=pinned)


def _result(r: object) -> str:
    if isinstance(r, tuple) or r is None:
        return shown(r)  # type: ignore[arg-type]
    return repr(r)


@invariant(
    "over_limit_assignment_is_rejected_not_truncated", family=FAMILY, level=Level.MUST,
    rule="A value up to max_value_size is stored whole; a longer one, or a new key when the map holds "
         "capacity keys, raises and changes nothing (no prefix stored, no key dropped or evicted); "
         "replacing a present key's value at capacity, or adding a key after a delete, is accepted.",
    source="Python docs multiprocessing.shared_memory (a block has a fixed size) and memoryview (slice "
           "assignment cannot resize); sqlite.org 'Limits In SQLite' (a string or BLOB over the limit is "
           "an SQLITE_TOOBIG error, not a shortened value)",
    placements=["fork"],
)
def over_limit_assignment_is_rejected_not_truncated(backend: object, case: Case) -> None:
    top, capacity = int(case.backend.max_value_size), int(case.backend.capacity)

    def body(full: bool, sizes: List[int], value: Blob, over: Blob) -> None:
        fill = [Blob(sizes[i % len(sizes)], i) for i in range(capacity)] if full else []
        target = "f0" if full else "target"
        out = case.run([Role("S", roles.probe_limits, (fill, target, value, over, "extra" if full else ""))])
        got = out.value("S")
        h = out.history
        expect(got["fill"] == ["ok"] * len(fill), case.invariant.id, got=f"filling: {_verdicts(got['fill'])}",
               expected=f"{capacity} keys of at most {max(sizes)} bytes accepted", call="set",
               history=h.format(h.of("S", "set", "fail")[:2]))
        stored = roles.digest(value.data)
        expect(got["set"] == "ok" and got["after"] == stored, case.invariant.id,
               got=f"set({target!r}, {value}): {got['set']}, then get read {shown(got['after'])}",
               expected=f"accepted and stored whole (max_value_size {top})", call="set",
               history=h.format(h.of("S")[-6:]))
        expect(got["over"] != "ok", case.invariant.id, got=f"set({target!r}, {over}) returned",
               expected=f"an exception (longer than max_value_size {top})", call="set",
               history=h.format(h.of("S", "set")[-1:]))
        expect(got["after_over"] == stored, case.invariant.id,
               got=f"after the refused set, get({target!r}) read {shown(got['after_over'])}",
               expected=f"{value} unchanged", call="get", history=h.format(h.of("S", "get")[-1:]))
        if full:
            _judge_full(case, got, fill, capacity, h)

    sizes = st.lists(st.sampled_from([0, 1, 8, 64]), min_size=1, max_size=3)
    value = st.builds(Blob, st.just(top) | value_sizes(case), st.integers(0, 2**16))
    over = st.one_of(st.just(top + 1), st.integers(top + 1, top + limits.page_size()))
    case.explore(body, full=st.booleans() if capacity <= FILL_MAX else st.just(False), sizes=sizes, value=value,
                 over=st.builds(Blob, over, st.integers(0, 2**16)))


def _verdicts(vs: List[str]) -> str:
    bad = [(i, v) for i, v in enumerate(vs) if v != "ok"]
    return f"{len(bad)} of {len(vs)} refused, first f{bad[0][0]}: {bad[0][1]}" if bad else "all accepted"


def _judge_full(case: Case, got: Dict[str, Any], fill: List[Blob], capacity: int, h: Any) -> None:
    expect(got["extra"] != "ok" and got["extra_after"] is None and got["keys"] == capacity, case.invariant.id,
           got=f"a new key in the full map: {got['extra']}, then read as {shown(got['extra_after'])}, "
               f"{got['keys']} keys listed",
           expected=f"an exception, the key absent and still {capacity} keys", call="set",
           history=h.format([e for e in h.of("S", "set") if e.detail.startswith("'extra'")][:2]))
    kept = [roles.digest(b.data) for i, b in enumerate(fill) if i != 1][1:]
    lost = [i for i, (a, b) in enumerate(zip(got["fill_after"][1:], kept)) if a != b]
    expect(not lost, case.invariant.id,
           got=f"{len(lost)} of the filled keys changed (first: f{lost[0] + 2 if lost else 0})",
           expected="every filled key keeps its value", call="get", history=h.format(h.of("S", "get")[-2:]))
    expect(got["deleted"] and got["extra_again"] == "ok", case.invariant.id,
           got=f"delete('f1') returned {got['deleted']}, then the new key: {got['extra_again']}",
           expected="True, then accepted (a slot is free again)", call="set", history=h.format(h.of("S")[-4:]))


@invariant(
    "attacher_exit_leaves_the_map_intact", family=FAMILY, level=Level.MUST,
    rule="A fresh interpreter that opens the map by name, sets keys and exits (closing first or not, or "
         "by os._exit) leaves the map and every value in it, its own included, in place.",
    source="CPython gh-82300 (an attacher's resource tracker unlinks shared memory it did not create); "
           "Python docs multiprocessing.shared_memory (track=, 3.13) and os._exit; sqlite.org "
           "'Atomic Commit' (a committed transaction survives its process)",
    requires=[NAMED_ATTACH],
    placements=["fork"],
)
def attacher_exit_leaves_the_map_intact(backend: object, case: Case) -> None:
    def body(before: List[Blob], mine: List[Blob], how: str) -> None:
        own = [(f"own{i}", b) for i, b in enumerate(mine)]
        old = [(f"old{i}", b) for i, b in enumerate(before)]

        def prefill(channel: object) -> None:
            h = channel.open()  # type: ignore[attr-defined]
            for k, b in old:
                h.set(k, b.data)
            h.close()

        keys = [k for k, _ in old + own]
        out = case.run([Role("P", roles.attacher_exits, (own, how, keys), opens=False)], channel_setup=prefill)
        rc, tail, now = out.value("P")
        expect(rc == 0, case.invariant.id, got=f"the fresh interpreter exited {rc}", expected="exit 0",
               call="subprocess", history=out.history.format() + f"\nits output:\n{tail}")
        for k, b in old + own:
            expect(now[k] == roles.digest(b.data), case.invariant.id,
                   got=f"after it exited ({how}), {k!r} read as {shown(now[k])}",
                   expected=f"{b} (set {'before' if k.startswith('old') else 'by it'}; Python "
                            f"{sys.version.split()[0]})", call="get", history=out.history.format())

    case.explore(body, scale=0.3, before=st.lists(values(case), min_size=1, max_size=3),
                 mine=st.lists(values(case), max_size=3), how=st.sampled_from(roles.EXIT_WAYS))
