"""An interrupt that cannot be lost.

CPython runs a Python signal handler at the next bytecode of the main thread,
wherever that is.  When that is a ``__del__`` method, a weakref callback or an
at-fork hook, the KeyboardInterrupt the handler raises is reported as "ignored"
and dropped, and a run that was told to stop goes on waiting for a hung example.
So the handlers installed here also *latch* the interrupt, and every wait of the
harness (:func:`raise_if_interrupted`, at least once a second) raises it again.
"""

from __future__ import annotations

import signal
from typing import Any, Dict

_latched = ""
_previous: Dict[int, Any] = {}


def _on_interrupt(signum: int, frame: Any) -> None:
    global _latched
    _latched = signal.Signals(signum).name
    raise KeyboardInterrupt(_latched)


def install() -> None:
    """Latch SIGINT and SIGTERM (main thread only; handlers set by others are kept)."""
    for sig, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(sig) is default and sig not in _previous:
            try:
                signal.signal(sig, _on_interrupt)
            except ValueError:  # not the main thread
                continue
            _previous[sig] = default


def uninstall() -> None:
    global _latched
    for sig, handler in _previous.items():
        signal.signal(sig, handler)
    _previous.clear()
    _latched = ""


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt again if one was signalled, even if it was swallowed."""
    if _latched:
        raise KeyboardInterrupt(f"{_latched} (raised again: the first was lost inside a finalizer or hook)")
