"""The README's command table, made from the commands' own help (``python -m cli.reference``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

BEGIN, END = "<!-- commands:begin -->", "<!-- commands:end -->"


def walk(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under ``group`` with its path, depth first, in registration order."""
    out: list[tuple[tuple[str, ...], Any]] = []
    for name, cmd in group.commands.items():
        if cmd.hidden:
            continue
        path = (*prefix, name)
        out.append((path, cmd))
        if hasattr(cmd, "commands"):
            out.extend(walk(cmd, path))
    return out


def _usage(path: tuple[str, ...], cmd: Any) -> str:
    args = [(p.name or "").upper() for p in cmd.params
            if p.param_type_name == "argument"]
    return " ".join(("velocity", *path, *args))


def command_table() -> str:
    """Markdown rows: each command's usage and the first line of its help."""
    from cli.main import app

    rows = ["| command | what it does |", "| --- | --- |"]
    for path, cmd in walk(typer.main.get_command(app)):
        paragraph = (cmd.help or "").strip().split("\n\n")[0]
        summary = " ".join(paragraph.split()).rstrip(".")
        rows.append(f"| `{_usage(path, cmd)}` | {summary} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    """``readme`` with the text between the command-table markers replaced by the table."""
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{command_table()}\n{END}{tail}"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    target.write_text(with_table(target.read_text()))
