"""A progress display on stderr for long database commands.

A command goes through steps (copying, removing, verifying), each over
every table. On a terminal the current table's bar is redrawn in place (at
most ten times a second)::

    copying   resource_providers            [########------------]   40,000/100,000

and each step ends with one summary line. Elsewhere (a log, a pipe) only
the summary lines are written, plus a line every ``HEARTBEAT_SECONDS``
during a long table, so a log shows the command is alive without a line
per batch::

    copying: 12 tables, 391,224 rows, 84.2 s

A few lines of our own rather than a dependency such as tqdm: this is all
the commands need, and it keeps Stowage's install as small as it is.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

HEARTBEAT_SECONDS = 30.0
_REDRAW_SECONDS = 0.1
_BAR_WIDTH = 20
_CLEAR_LINE = "\r\x1b[K"


class ProgressDisplay:
    """Implements ``storage.transfer.Progress`` on a text stream; ``close`` ends the last step."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self._step: str | None = None
        self._table = ""
        self._total = self._done = 0
        self._step_tables = self._step_rows = 0
        self._step_started = self._drawn_at = 0.0

    def begin(self, step: str, table: str, total: int) -> None:
        if step != self._step:
            self.close()
            self._step, self._step_tables, self._step_rows = step, 0, 0
            self._step_started = time.monotonic()
        self._table, self._total, self._done = table, total, 0
        self._step_tables += 1
        self._drawn_at = time.monotonic()
        if self.interactive:
            self._draw()

    def advance(self, rows: int) -> None:
        self._done += rows
        self._step_rows += rows
        now = time.monotonic()
        if self.interactive and now - self._drawn_at >= _REDRAW_SECONDS:
            self._draw()
        elif not self.interactive and now - self._drawn_at >= HEARTBEAT_SECONDS:
            self._write(f"{self._step} {self._table}: {self._done:,} of {self._total:,} rows so far\n")
            self._drawn_at = now

    def end(self) -> None:
        if self.interactive:
            self._draw()

    def close(self) -> None:
        """Write the summary line of the step in progress, if any."""
        if self._step is None:
            return
        seconds = time.monotonic() - self._step_started
        tables = f"{self._step_tables} table{'s' if self._step_tables != 1 else ''}"
        summary = f"{self._step}: {tables}, {self._step_rows:,} rows, {seconds:.1f} s\n"
        self._write((_CLEAR_LINE if self.interactive else "") + summary)
        self._step = None

    def interrupt(self) -> None:
        """End a half-drawn bar, so that a message can follow on its own line."""
        if self._step is not None and self.interactive:
            self._write("\n")
        self._step = None

    def _draw(self) -> None:
        share = min(self._done / self._total, 1.0) if self._total else 1.0
        filled = round(share * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        counts = f"{self._done:,}/{self._total:,}"
        self._write(f"{_CLEAR_LINE}{self._step:<9} {self._table:<30} [{bar}] {counts:>19}")
        self._drawn_at = time.monotonic()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
