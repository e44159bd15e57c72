"""The longest silence of a command as a person at a terminal meets it: every line (or progress-bar
redraw) it prints, timestamped, and the longest gap between two of them.

python bench/silences.py [--log out.txt] [--limit 5] -- driftloop demo --workdir /tmp/d

The command runs on a pseudo-terminal, as it would in a shell, so it buffers and draws as it does for
a person (a pipe would change both). Exits 1 when the longest silence is over ``--limit`` seconds.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import subprocess
import sys
import time
from dataclasses import dataclass

# A line ends at a newline, or at a carriage return when a progress bar redraws itself.
LINE_END = re.compile(rb"\r\n|\n|\r")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass(frozen=True)
class Silence:
    seconds: float
    before: str  # the last line printed before it ("" at the start)
    after: str  # the line that ended it ("" at the exit)


def timed_lines(command: list[str]) -> tuple[list[tuple[float, str]], float, int]:
    """Run ``command`` on a pseudo-terminal; return its lines with seconds since the start, the time it
    exited and its exit code."""
    controller, terminal = pty.openpty()
    began = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    lines: list[tuple[float, str]] = []
    pending = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: every process holding it has exited
            break
        if not chunk:
            break
        now = time.monotonic() - began
        *complete, pending = LINE_END.split(pending + chunk)
        lines += [(now, ANSI.sub("", raw.decode(errors="replace"))) for raw in complete]
    code = process.wait()
    ended = time.monotonic() - began
    os.close(controller)
    if pending:
        lines.append((ended, ANSI.sub("", pending.decode(errors="replace"))))
    return lines, ended, code


def silences(lines: list[tuple[float, str]], ended: float) -> list[Silence]:
    """Every gap between two outputs, from the start to the exit; blank lines count as output."""
    gaps, last_time, last_line = [], 0.0, ""
    for at, line in lines:
        gaps.append(Silence(at - last_time, last_line, line))
        last_time, last_line = at, line
    gaps.append(Silence(ended - last_time, last_line, ""))
    return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="Write every timestamped line here.")
    parser.add_argument("--limit", type=float, default=5.0, help="Longest silence allowed, in seconds.")
    parser.add_argument("--top", type=int, default=5, help="How many of the longest silences to show.")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    lines, ended, code = timed_lines(command)
    if args.log:
        with open(args.log, "w") as log:
            log.writelines(f"{at:8.2f}  {line}\n" for at, line in lines)
    gaps = sorted(silences(lines, ended), key=lambda gap: gap.seconds, reverse=True)
    print(f"{' '.join(command)}: exit {code}, {ended:.1f} s, {len(lines)} lines")
    for gap in gaps[: args.top]:
        print(f"  {gap.seconds:6.1f} s silent after {gap.before[:70]!r}, until {gap.after[:70]!r}")
    longest = gaps[0].seconds
    verdict = "ok" if longest <= args.limit else "TOO LONG"
    print(f"longest silence {longest:.1f} s (limit {args.limit:.1f} s): {verdict}")
    sys.exit(0 if longest <= args.limit else 1)


if __name__ == "__main__":
    main()
