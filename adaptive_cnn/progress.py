"""Progress output for long work: a live line on a terminal, sparse lines in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressLine:
    """Shows ``done/total`` with a message on ``stream`` (stderr by default).

    On a terminal the line is redrawn in place at most 10 times per second; otherwise
    (CI logs, pipes) a line is printed at each 10% step, so logs stay short.
    """

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = 0.0
        self._last_decile = -1

    def update(self, done: int, total: int, message: str = "") -> None:
        if not self.enabled:
            return
        fraction = done / total if total else 1.0
        text = f"{self.label} {_bar(fraction)} {done}/{total} {message}".rstrip()
        if self.live:
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or done >= total:
                self.stream.write("\r\033[K" + text)
                self.stream.flush()
                self._last_draw = now
            return
        decile = int(fraction * 10)
        if decile != self._last_decile:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_decile = decile

    def close(self) -> None:
        if self.enabled and self.live:
            self.stream.write("\n")
            self.stream.flush()


def _bar(fraction: float, width: int = 24) -> str:
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:5.1f}%"
