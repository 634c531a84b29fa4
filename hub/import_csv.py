"""Reading an uploaded CSV into rows, each with its line number, and normalising the
contact details imports match people on."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from core.errors import RecordInvalid

MAX_CSV_BYTES = 5 << 20
MAX_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    """The row's line in the file as a spreadsheet shows it (the header is line 1)."""
    values: dict[str, str]
    extra_cells: bool = False
    """The row had more cells than the header has columns."""


@dataclass(slots=True)
class RowErrors:
    """Problems found in a file, each naming its line and column."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, line: int, column: str | None, message: str) -> None:
        self.items.append({"line": line, "column": column, "message": message})

    def add_validation(self, line: int, exc: ValidationError, columns: dict[str, str]) -> None:
        """Each problem pydantic found, named by the CSV column (``columns``: field → column)."""
        for problem in exc.errors():
            name = str(problem["loc"][0]) if problem["loc"] else None
            self.add(line, columns.get(name or "", name), problem["msg"])

    def __bool__(self) -> bool:
        return bool(self.items)


def read_csv(data: bytes, *, required: Collection[str], known: Collection[str]
             ) -> list[CsvRow]:
    """The data rows of ``data`` (UTF-8, a header row, commas), values stripped and empty ones
    left out; a file that is too big, not text, or has unknown or missing columns is a
    `RecordInvalid` naming what to fix."""
    if len(data) > MAX_CSV_BYTES:
        raise RecordInvalid(f"the file is over {MAX_CSV_BYTES >> 20} MB: split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RecordInvalid("the file is not UTF-8 text: export the sheet as CSV UTF-8") from None
    if "\x00" in text:
        raise RecordInvalid("the file is not a CSV (it holds NUL bytes)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise RecordInvalid("the file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise RecordInvalid(f"the file is not a readable CSV: {exc}") from None
    unknown = sorted(set(header) - set(known) - {""})
    missing = sorted(set(required) - set(header))
    if unknown or missing or len(set(header)) != len(header):
        problems = ([f"unknown column {c!r}" for c in unknown]
                    + [f"missing column {c!r}" for c in missing]
                    + (["a column appears twice"] if len(set(header)) != len(header) else []))
        raise RecordInvalid(f"the header does not fit: {'; '.join(problems)} (columns: "
                            f"{', '.join(known)})", problems=problems)
    rows: list[CsvRow] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise RecordInvalid(f"the file has over {MAX_ROWS} rows: split it")
            values = {h: c.strip() for h, c in zip(header, cells, strict=False)
                      if h and c.strip()}
            rows.append(CsvRow(reader.line_num, values, len(cells) > len(header)))
    except csv.Error as exc:
        raise RecordInvalid(f"line {reader.line_num} is not readable CSV: {exc}") from None
    if not rows:
        raise RecordInvalid("the file has a header but no rows")
    return rows


_PHONE_CHARS = re.compile(r"^[+\d\s().\-/]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalise_phone(raw: str, country_code: str = "91") -> str:
    """A phone number as ``+<digits>``: a 10-digit national number gets ``country_code``, a
    leading 00 becomes +; a ValueError when it is not a phone number."""
    text = raw.strip()
    if not _PHONE_CHARS.match(text):
        raise ValueError(f"{raw!r} is not a phone number")
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    elif not text.startswith("+"):
        digits = digits.lstrip("0")
        if len(digits) == 10:
            digits = country_code + digits
    if not 8 <= len(digits) <= 15:
        raise ValueError(f"{raw!r} is not a phone number (8 to 15 digits with the country code)")
    return "+" + digits


def normalise_email(raw: str) -> str:
    """An email address, lower case; a ValueError when it is not one."""
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise ValueError(f"{raw!r} is not an email address")
    return email
