"""Spec: the progress display draws a bar on a terminal and writes summary lines elsewhere."""
from __future__ import annotations

import io

from stowage.cmd.progress import ProgressDisplay


def run_two_steps(display: ProgressDisplay) -> None:
    display.begin("copying", "resource_providers", 4)
    display.advance(2)
    display.advance(2)
    display.end()
    display.begin("copying", "inventories", 0)
    display.end()
    display.begin("verifying", "resource_providers", 4)
    display.advance(4)
    display.end()
    display.close()


def test_off_a_terminal_each_step_ends_with_one_summary_line():
    stream = io.StringIO()
    run_two_steps(ProgressDisplay(stream, interactive=False))
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0:2] for line in lines] == [
        ["copying: 2 tables", " 4 rows"],
        ["verifying: 1 table", " 4 rows"],
    ]
    assert "\r" not in stream.getvalue()


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_each_step_keeps_its_summary():
    stream = io.StringIO()
    run_two_steps(ProgressDisplay(stream, interactive=True))
    text = stream.getvalue()
    assert "[####################]" in text
    assert "        4/4" in text
    assert text.count("\n") == 2
    assert text.rstrip("\n").split("\n")[-1].endswith("s")


def test_an_interrupted_bar_ends_its_line_first():
    stream = io.StringIO()
    display = ProgressDisplay(stream, interactive=True)
    display.begin("copying", "traits", 10)
    display.interrupt()
    assert stream.getvalue().endswith("\n")
