"""Tables for reading commands that stay readable from 80 columns up.

    fitted(width, headers, rows, give_way=(...), whole=(...)) -> Table

* A header is never cut to `servi…`: a long two-word header takes two lines (`applied_`
  over `generation`).
* Short words (`whole`: services, modes, statuses, health) are never split mid-word:
  `runnin/g` reads as two words. Free text (versions, reasons) folds instead.
* When the table would not fit, the columns in `give_way` leave it, in that order, those
  with nothing to say (every cell `-`) first; the caption says which (`-o json` has every
  field). `bosun machines` drops addresses the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson
from rich.table import Table

EMPTY = "-"


def table(**options: Any) -> Table:
    """Columns apart by one space, a rule under the headers: 12 columns fit 100."""
    from rich import box

    return Table(box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, **options)


def label(header: str) -> str:
    """The header as shown: `applied_generation` over two lines, short ones as they are."""
    words = header.replace("_", " ").split(" ")
    text = "\n".join(words) if len(header) > 10 and len(words) > 1 else header
    if "\n" in text and "_" in header:
        text = text.replace("\n", "_\n", 1)
    return text


def column(t: Table, header: str, **options: Any) -> None:
    """A column whose header is never cut (narrow tables wrap cells instead)."""
    text = label(header)
    options.setdefault("overflow", "fold")  # a narrow cell wraps; nothing becomes `…`
    options.setdefault("min_width", max(len(w) for w in text.split("\n")))
    t.add_column(text, **options)


def _natural(header: str, cells: Sequence[str], *, fold: bool = False) -> int:
    """The width a column needs: its longest cell line, or (`fold`: it wraps at spaces)
    its longest word; never less than its header's longest line."""
    parts = (p for c in cells for p in (c.split() if fold else c.split("\n")))
    return max(
        max((len(p) for p in parts), default=0), *(len(w) for w in label(header).split("\n"))
    )


def keep(
    width: int,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    give_way: Sequence[str] = (),
    whole: Sequence[str] = (),
) -> list[str]:
    """The headers that fit `width` (`whole` columns at their longest cell, the others at
    their longest word), dropping `give_way` columns, empty ones first, then in order,
    until they do; the others always stay."""
    # each column is followed by one space of padding and one of rule; two edges
    widths = {
        h: _natural(h, [r[i] for r in rows], fold=h not in whole) + 2 for i, h in enumerate(headers)
    }
    empty = {h for i, h in enumerate(headers) if all(r[i] == EMPTY for r in rows)}
    present = [h for h in give_way if h in widths]
    order = [h for h in present if h in empty] + [h for h in present if h not in empty]
    kept = list(headers)
    for h in order:
        if sum(widths[k] for k in kept) + 1 <= width:
            break
        kept.remove(h)
    return kept


def fitted(
    width: int,
    headers: Sequence[str],
    rows: Sequence[tuple[Sequence[str], str]],
    *,
    give_way: Sequence[str] = (),
    whole: Sequence[str] = (),
    title: str | None = None,
) -> Table:
    """A table of `rows` (cells, row style) that fits `width` as well as it can: `whole`
    columns never wrap mid-word, `give_way` columns leave first when it does not fit."""
    cells_only = [cells for cells, _ in rows]
    kept = keep(width, headers, cells_only, give_way, whole)
    dropped = [h for h in headers if h not in kept]
    caption = f"narrow terminal: no {', '.join(dropped)} (-o json has all)" if dropped else None
    t = table(title=title, caption=caption)
    index = [headers.index(h) for h in kept]
    for i, h in zip(index, kept, strict=True):
        if h in whole:  # as wide as its longest word: never `runnin/g`
            natural = _natural(h, [c[i] for c in cells_only])
            column(t, h, no_wrap=True, overflow="ellipsis", min_width=natural)
        else:
            column(t, h)
    for cells, style in rows:
        t.add_row(*(cells[i] for i in index), style=style)
    return t


# ---- cells and machine output ------------------------------------------------------------


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def print_json(value: Any) -> None:
    sys.stdout.buffer.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )


def counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"
