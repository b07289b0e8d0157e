"""Progress bars (ember.experimental.tqdm_ray) without a cluster: the state
lines tasks print, what the driver draws for them (on a terminal, replayed
on a small terminal model; in a pipe, one line per change), and the log
printer turning state lines into bars."""

import re

import pytest

from ember._private import bar_state, log_printer
from ember._private.bar_state import BarState
from ember._private.progress_bars import BarDisplay, render
from ember.experimental import tqdm_ray
from ember.v1 import raylet_pb2


def state(uuid="u1", n=0, total=10, desc="work", closed=False, position=0, unit="it"):
    return BarState(uuid=uuid, desc=desc, n=n, total=total, unit=unit, position=position, closed=closed)


class Terminal:
    """The screen after some output, for the escapes the display uses
    (\\r, \\n, erase line, erase below, cursor up n lines)."""

    def __init__(self):
        self.lines = [""]
        self.row = self.col = 0

    def feed(self, text):
        for token in re.findall(r"\x1b\[(\d*)([A-Za-z])|(\r)|(\n)|([^\x1b\r\n]+)", text):
            number, command, cr, nl, chars = token
            if cr:
                self.col = 0
            elif nl:
                self.row += 1
                self.col = 0
                if self.row == len(self.lines):
                    self.lines.append("")
            elif chars:
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[:self.col] + chars + line[self.col + len(chars):]
                self.col += len(chars)
            elif command == "K":
                self.lines[self.row] = ""
            elif command == "J":
                self.lines[self.row] = self.lines[self.row][:self.col]
                del self.lines[self.row + 1:]
            elif command == "F":
                self.row -= int(number or 1)
                self.col = 0
            else:
                raise AssertionError(f"unexpected escape {command!r}")
        return self

    def screen(self):
        return [line for line in self.lines if line]


def test_state_lines_round_trip_and_are_found_after_other_text():
    s = state(n=3.5, total=None, desc='a "quoted" desc')
    line = bar_state.encode(s)
    assert bar_state.decode(line) == ("", s)
    assert bar_state.decode("unfinished print " + line) == ("unfinished print ", s)
    assert bar_state.decode("an ordinary line") == ("an ordinary line", None)
    damaged = bar_state.MARKER + '{"uuid": "x"'
    assert bar_state.decode(damaged) == (damaged, None)


def test_render():
    assert render("(t pid=1) ", state(n=4, total=10), 2.0) == \
        "(t pid=1) work:  40%|########            | 4/10 [00:02<00:03, 2.00it/s]"
    assert render("", state(n=0, total=10, desc=""), 0.0) == "  0%|                    | 0/10 [00:00<?, ?it/s]"
    assert render("", state(n=12, total=10), 3725.0).startswith("work: 100%|####################| 12/10 [1:02:05<")
    assert render("", state(n=5, total=None, unit="B"), 5.0) == "work: 5B [00:05, 1.00B/s]"


def test_pipes_get_a_line_per_change():
    d = BarDisplay()
    assert d.update(state(n=0), "p1", "(t pid=1) ", now=0.0, terminal=False) == \
        "(t pid=1) work:   0%|                    | 0/10 [00:00<?, ?it/s]\n"
    assert d.update(state(n=0), "p1", "(t pid=1) ", now=1.0, terminal=False) == ""  # nothing changed
    assert "5/10" in d.update(state(n=5), "p1", "(t pid=1) ", now=1.0, terminal=False)
    assert "10/10" in d.update(state(n=10), "p1", "(t pid=1) ", now=2.0, terminal=False)
    assert d.update(state(n=10, closed=True), "p1", "(t pid=1) ", now=2.0, terminal=False) == ""  # closing: no change
    assert d.clear() == "" and d.redraw(3.0) == ""  # nothing is drawn in place on a pipe


def test_terminal_bars_are_redrawn_in_place_in_order():
    d, t = BarDisplay(), Terminal()
    t.feed("$ python job.py\n")
    t.feed(d.update(state("b", n=1, desc="second", position=1), "p1", "", 1.0, True))
    t.feed(d.update(state("a", n=1, desc="first", position=0), "p1", "", 1.0, True))
    t.feed(d.update(state("c", n=2, desc="other process"), "p2", "", 1.0, True))
    t.feed(d.update(state("b", n=7, desc="second", position=1), "p1", "", 2.0, True))
    assert [line.split(":")[0] for line in t.screen()] == ["$ python job.py", "first", "second", "other process"]
    assert "7/10" in t.screen()[2]
    # Other output: the block is cleared, the text written, the block drawn under it.
    t.feed(d.clear() + "a log line\n" + d.redraw(3.0))
    assert [line.split(":")[0] for line in t.screen()] == ["$ python job.py", "a log line", "first", "second",
                                                           "other process"]
    # A closed bar's last line stays above the block of open ones.
    t.feed(d.update(state("b", n=10, desc="second", position=1, closed=True), "p1", "", 4.0, True))
    assert [line.split(":")[0] for line in t.screen()] == ["$ python job.py", "a log line", "second", "first",
                                                           "other process"]
    assert "10/10" in t.screen()[2]
    t.feed(d.leave() + "$ ")  # at exit the prompt comes below the bars
    assert t.screen()[-1] == "$ " and len(t.screen()) == 6


def test_terminal_lines_are_cut_to_its_width():
    d, t = BarDisplay(), Terminal()
    t.feed(d.update(state(desc="x" * 100), "p1", "", 0.0, True, columns=40))
    assert t.screen() == ["x" * 39]


def logs(*lines, pid=7, name="task", is_stderr=False):
    return [raylet_pb2.LogLines(pid=pid, task_name=name, is_stderr=is_stderr, lines=list(lines))]


def test_the_log_printer_draws_state_lines_and_prints_the_rest(capsys):
    bar = state("printer-bar", n=3, desc="copy")
    log_printer.print_logs(logs("before", bar_state.encode(bar), "partial " + bar_state.encode(bar), "after"))
    out, err = capsys.readouterr()
    assert out == "(task pid=7) before\n(task pid=7) partial \n(task pid=7) after\n"
    assert err == "(task pid=7) copy:  30%|######              | 3/10 [00:00<?, ?it/s]\n"
    assert bar_state.MARKER not in out + err


def test_a_driver_bar_is_drawn_directly_and_closed_at_the_end(capsys):
    for _ in tqdm_ray.tqdm(range(3), desc="local", flush_interval_s=0):
        pass
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[0].startswith("local:   0%") and err.splitlines()[-1].startswith("local: 100%")
    assert "3/3" in err.splitlines()[-1]


def test_tqdm_counts_and_throttles(capsys):
    bar = tqdm_ray.tqdm(total=100, desc="slow", flush_interval_s=3600)
    for _ in range(50):
        bar.update()
    assert bar.n == 50 and bar.total == 100
    assert capsys.readouterr().err.count("slow:") == 1  # the first state; the rest waits for the interval
    bar.update(50)  # the total: shown at once
    bar.close()
    bar.close()
    assert capsys.readouterr().err.count("100/100") == 1
    with pytest.raises(ValueError, match="No iterable provided"):
        iter(tqdm_ray.tqdm(total=3)).__next__()
