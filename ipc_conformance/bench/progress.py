"""The bench's progress: a bar rewritten in place on a terminal, a few plain lines elsewhere.

On a terminal: ``bench [#####.....] 27/54 os-pipe 64 KiB ~12 s left``, one line rewritten
with ``\\r``.  Into a log (``--progress`` with stderr not a terminal): a plain line each
time another tenth of the work is done, never a ``\\r``, so a log stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

#: The line's width: an 80-column terminal without wrapping.
WIDTH = 79
BAR = 10


def bar_line(label: str, done: int, total: Optional[int], elapsed: float, what: str = "") -> str:
    """One progress line, at most ``WIDTH`` characters; ``total`` None or 0: not known yet."""
    if not total:
        return f"{label} [{'.' * BAR}] {done}/? {elapsed:.0f} s"[:WIDTH]
    done = min(done, total)
    filled = BAR * done // total
    tail = f" ~{elapsed / done * (total - done):.0f} s left" if 0 < done < total else f" {elapsed:.0f} s"
    head = f"{label} [{'#' * filled}{'.' * (BAR - filled)}] {done}/{total}"
    room = WIDTH - len(head) - len(tail) - 1
    return head + (f" {what[:room]}" if what and room > 3 else "") + tail


class Bar:
    """A progress line on ``stream``: ``tty`` draws in place, else plain lines at each tenth."""

    def __init__(self, label: str, enabled: bool, tty: bool, stream: Optional[TextIO] = None) -> None:
        self.label, self.enabled, self.tty = label, enabled, tty
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self.tenth = -1
        self.drawn = False

    def update(self, done: int, total: Optional[int], what: str = "") -> None:
        if not self.enabled:
            return
        line = bar_line(self.label, done, total, time.monotonic() - self.start, what)
        if self.tty:
            self.stream.write("\r" + line.ljust(WIDTH))
            self.drawn = True
        else:
            tenth = 10 * done // total if total else -1
            if tenth <= self.tenth:
                return
            self.tenth = tenth
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:  # the terminal's line is cleared for what follows
            self.stream.write("\r" + " " * WIDTH + "\r")
            self.stream.flush()
            self.drawn = False
