"""Whitespace-separated annotation lines, with errors that name file, line and field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.base import TaskDataError


@dataclass(frozen=True)
class Line:
    """One non-blank line split on any whitespace (``fields``); ``lineno`` is 1-based."""

    path: Path
    lineno: int
    fields: tuple[str, ...]

    def error(self, field: str, message: str) -> TaskDataError:
        """A :class:`TaskDataError` naming this file, line and ``field``."""
        return TaskDataError(f"{self.path}:{self.lineno}: field {field!r}: {message}")

    def need(self, n: int, what: str) -> None:
        """Require at least ``n`` fields (``what`` describes the expected layout)."""
        if len(self.fields) < n:
            raise TaskDataError(
                f"{self.path}:{self.lineno}: expected {what}, got {len(self.fields)} field(s): "
                f"{' '.join(self.fields)!r}"
            )

    def int_at(self, index: int, field: str) -> int:
        """Field ``index`` as an int (``"120"``; ``"120.0"`` is accepted as well)."""
        token = self.fields[index]
        try:
            return int(token)
        except ValueError:
            try:
                value = float(token)
            except ValueError:
                value = float("nan")
            if value.is_integer():
                return int(value)
            raise self.error(field, f"expected an integer frame index, got {token!r}") from None


def read_lines(path: Path) -> Iterator[Line]:
    """Yield the non-blank lines of a text annotation file (UTF-8, BOM and CRLF tolerated).

    Raises:
        TaskDataError: the file is missing or not text.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TaskDataError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskDataError(f"{path}: cannot read ({exc})") from exc
    for lineno, raw in enumerate(text.splitlines(), start=1):
        fields = tuple(raw.split())
        if fields:
            yield Line(Path(path), lineno, fields)


def read_json(path: Path, what: str) -> Any:
    """Parse a JSON file; errors name the file (``what`` it is) or the line and column."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TaskDataError(f"{path}: {what} not found") from None
    except json.JSONDecodeError as exc:
        raise TaskDataError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON ({exc.msg})") from exc


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file's content (BOM dropped); errors name the file and ``what`` it is."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TaskDataError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskDataError(f"{path}: cannot read {what} ({exc})") from exc


def read_jsonl(path: Path, what: str) -> list[tuple[int, Any]]:
    """Parse a JSON-lines file -> ``[(1-based line number, value)]``, blank lines skipped;
    errors name the file and the line."""
    text = read_text(path, what)
    rows = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            rows.append((lineno, json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise TaskDataError(f"{path}:{lineno}:{exc.colno}: invalid JSON ({exc.msg})") from exc
    return rows
