"""Long preparation said as it goes: one line with the time left, measured on the first steps,
only where the rest takes long; the results whole and in order either way."""

from __future__ import annotations

import time

from letterbench.core.progress import duration, in_steps


def test_a_long_preparation_says_what_it_does_and_how_long_the_rest_takes(capsys):
    def slow(step: int) -> int:
        time.sleep(0.02)
        return step * step

    assert in_steps(list(range(8)), slow, "squaring 8 numbers", probe=2, quiet_below=0.05) == [
        k * k for k in range(8)
    ]
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("squaring 8 numbers: about ") and line.endswith(" s more")


def test_a_short_one_says_nothing(capsys):
    assert in_steps(range(5), lambda k: -k, "negating", quiet_below=10.0) == [0, -1, -2, -3, -4]
    assert in_steps([], lambda k: k, "nothing") == []
    assert capsys.readouterr().out == ""


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (4.2, 89, 90, 1000, 5400)] == ["4 s", "89 s", "2 min", "17 min", "1.5 h"]
