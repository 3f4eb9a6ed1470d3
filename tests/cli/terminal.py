"""Run a command as in a terminal of a given width: stdout (or stderr) on a pseudo-terminal, so rich draws for it."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def in_terminal(*args: str, columns: int = 80, env: dict[str, str] | None = None, home: Path | None = None,
                stream: str = "stdout") -> tuple[int, str, str]:
    """``tokenomy ARGS`` with ``stream`` (stdout or stderr) on a terminal ``columns`` wide; returns the exit code, what
    the terminal showed (escape codes removed) and the other stream."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(home or os.environ.get("HOME", "/tmp")),
            "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color"}
    controller, terminal = pty.openpty()
    other = subprocess.PIPE
    try:
        proc = subprocess.Popen([sys.executable, "-m", "tokenomy", *args], env={**base, **(env or {})},
                                stdout=terminal if stream == "stdout" else other,
                                stderr=terminal if stream == "stderr" else other, stdin=subprocess.DEVNULL)
    finally:
        os.close(terminal)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the command exited
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    rest = (proc.stderr if stream == "stdout" else proc.stdout)
    assert rest is not None
    text = rest.read().decode()
    code = proc.wait(60)
    return code, ANSI.sub("", shown.decode(errors="replace")), text
