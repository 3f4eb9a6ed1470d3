"""Where a command's human output goes, and how wide it may be.

- Progress goes to stderr, and shows whenever stderr is a terminal: also with ``--json`` (stdout is the JSON) and
  when stdout is piped. A run whose stderr is a file or a pipe shows none.
- Tables are drawn for the terminal's width (80 columns and up): the columns a user needs to act on (ids, names,
  prices) always, the rest with ``--wide`` or on a terminal wide enough for them. Ids are never cut: their column
  does not wrap and the others give way.
- Without a terminal (a pipe, a file) tables are drawn ``PIPED_WIDTH`` wide, every column shown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

PIPED_WIDTH = 160


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def show_progress(quiet: bool = False) -> bool:
    """A progress bar is wanted: stderr is a terminal and the user did not ask for quiet."""
    return not quiet and err_console().is_terminal


def out_console(wide: bool = False) -> Console:
    """stdout as rich draws on it: the terminal's width; ``PIPED_WIDTH`` when piped, or when ``wide`` (--wide: the
    whole table, lines longer than the terminal's)."""
    from rich.console import Console

    found = Console()
    if wide or not found.is_terminal:
        return Console(width=max(PIPED_WIDTH, found.width if found.is_terminal else 0))
    return found


def wide_enough(console: Console, wide: bool, needed: int) -> bool:
    """Show every column: asked for (``--wide``), or the console has ``needed`` columns."""
    return wide or console.width >= needed


def table(title: str | None = None) -> Table:
    """A compact table: a rule under the header, no vertical borders (two spaces between columns)."""
    from rich import box
    from rich.table import Table

    return Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, title_justify="left")


def id_column(found: Table, header: str) -> None:
    """A column of ids a user copies into the next command: never wrapped, never cut."""
    found.add_column(header, no_wrap=True, overflow="ignore", min_width=len(header))


def name_column(found: Table, header: str) -> None:
    """A column of names that may be long (model names): folded onto a second line when the terminal is narrow,
    never cut."""
    found.add_column(header, overflow="fold")


def number_column(found: Table, header: str) -> None:
    """Figures: right-aligned, never wrapped or cut (the header may wrap)."""
    found.add_column(header, justify="right", no_wrap=True)


def short_column(found: Table, header: str) -> None:
    """Short values (a status, a date, an amount): never wrapped or cut."""
    found.add_column(header, no_wrap=True)


def when(epoch_s: float | int | None, *, zone: bool = True) -> str:
    """An epoch time as a UTC date and time a person reads (``2026-11-24 14:03 UTC``; without `` UTC`` when
    ``zone`` is false, for a column headed so); ``–`` for none."""
    if epoch_s is None:
        return "–"
    return datetime.fromtimestamp(float(epoch_s), UTC).strftime("%Y-%m-%d %H:%M" + (" UTC" if zone else ""))


def shown(value: Any) -> str:
    """A cell: ``–`` for nothing, else the value as text (never a Python repr)."""
    if value is None or value == "":
        return "–"
    return str(value)
