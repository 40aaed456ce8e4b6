"""How long a run may take before it is called hung: bounds derived from the example.

A run whose roles all sleep and record nothing is called hung well before the global
deadline (``Case._adaptive_s`` in run.py): at a multiple of the slowest passing run of
the same check, and of the longest duration the example drew.  Checks that know what
they wait for give :meth:`Case.run` a ``deadline=`` of their own with :func:`patience`.
"""

from __future__ import annotations

from typing import Any

#: The adaptive deadline (see ``Case._adaptive_s``): only after this many passing examples
#: of the same check, never below the floor, never below these multiples of the slowest
#: passing run and of the longest duration the example drew, never above the deadline.
ADAPTIVE_AFTER = 5
ADAPTIVE_FLOOR_S = 2.0
#: ... and before that many: no figure from this check yet, so a higher floor.
ADAPTIVE_EARLY_FLOOR_S = 4.0
ADAPTIVE_PASS_FACTOR = 20.0
ADAPTIVE_DRAWN_FACTOR = 10.0


def patience(*seconds: float, factor: float = ADAPTIVE_DRAWN_FACTOR, floor: float = ADAPTIVE_FLOOR_S) -> float:
    """A ``deadline=`` for :meth:`Case.run` from the durations an example drew (seconds):
    the floor plus ``factor`` times the longest.  Generous on purpose: it only bounds a
    run whose roles all sleep and record nothing (a role that runs gets the deadline)."""
    return floor + factor * max(seconds, default=0.0)


#: Units of the drawn values whose names end so (the checks' naming convention).
_UNITS = (("_us", 1e-6), ("_ms", 1e-3), ("_s", 1.0), ("seconds", 1.0))


def longest_drawn_s(drawn: Any, unit: float = 0.0) -> float:
    """The longest duration among an example's drawn values, in seconds: every number
    (in lists, tuples and dicts too) under a name ending in ``_us``, ``_ms``, ``_s`` or
    ``seconds``.  A duration under another name is not seen: the floor covers it."""
    if isinstance(drawn, dict):
        found = 0.0
        for key, value in drawn.items():
            scale = next((f for suffix, f in _UNITS if str(key).endswith(suffix)), unit)
            found = max(found, longest_drawn_s(value, scale))
        return found
    if isinstance(drawn, (list, tuple)):
        return max([longest_drawn_s(v, unit) for v in drawn] + [0.0])
    if unit and isinstance(drawn, (int, float)) and not isinstance(drawn, bool):
        return float(drawn) * unit
    return 0.0
