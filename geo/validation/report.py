"""The upload report: every problem and warning found in one file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geo.errors import IngestError

MAX_PROBLEMS = 100
Reason = str | Callable[[int], str]  # a text, or the text for the i-th finding


def _finding(file: str, row: object, column: object, value: object, rule: str, reason: str) -> dict:
    return {
        "file": file,
        "row": None if row is None else int(row),  # type: ignore[call-overload]
        "column": None if column is None else str(column),
        "value": None if value is None else str(value),
        "rule": rule,
        "reason": reason,
    }


@dataclass
class Report:
    """Problems and warnings found in one file.

    Each finding is ``{"file", "row", "column", "value", "rule", "reason"}``: ``row`` as the
    user sees it (line of a text file, spreadsheet row, Parquet record), ``rule`` a short code
    such as ``unknown-nuts-code``.

    Attributes
    ----------
    problems, warnings
        The first ``max_problems`` findings of each kind.
    more_problems, more_warnings
        How many more were found but not listed.
    counts
        Rule -> every finding of that rule, listed or not.
    """

    file: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    max_problems: int = MAX_PROBLEMS
    more_problems: int = 0
    more_warnings: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        row: int | None,
        column: str | None,
        value: object,
        rule: str,
        reason: str,
        warning: bool = False,
    ) -> None:
        """Record one finding; ``row`` is the row number the user sees in the file."""
        self.extend([row], column, [value], rule, reason, warning)

    def extend(
        self,
        rows: Sequence[int | None] | np.ndarray,
        column: str | None | Sequence[str] | np.ndarray,
        values: Sequence[object] | np.ndarray,
        rule: str,
        reason: Reason,
        warning: bool = False,
        total: int | None = None,
    ) -> None:
        """Record one finding per row.

        Parameters
        ----------
        column
            The source column of every finding, or one per finding.
        reason
            A text, or a function giving the text of the i-th finding (called only for the
            findings that are listed).
        total
            The number of findings of which these are the first (default: as many as rows).
        """
        target = self.warnings if warning else self.problems
        n = len(rows)
        room = min(n, max(self.max_problems - len(target), 0))
        for i in range(room):
            col = column if column is None or isinstance(column, str) else column[i]
            text = reason if isinstance(reason, str) else reason(i)
            target.append(_finding(self.file, rows[i], col, values[i], rule, text))
        more = max(n if total is None else total, n) - room
        if warning:
            self.more_warnings += more
        else:
            self.more_problems += more
        self.counts[rule] = self.counts.get(rule, 0) + room + more

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings allowed)."""
        return not self.problems and not self.more_problems

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: the listed findings, how many more there are, counts per rule."""
        return {
            "file": self.file,
            "problems": self.problems,
            "warnings": self.warnings,
            "more_problems": self.more_problems,
            "more_warnings": self.more_warnings,
            "counts": dict(self.counts),
        }

    def raise_if_any(self) -> None:
        """Raise :class:`IngestError` listing the problems (and how many were not listed)."""
        if self.ok:
            return
        problems = list(self.problems)
        if self.more_problems:
            reason = f"and {self.more_problems} more problems not listed"
            problems.append(_finding(self.file, None, None, None, "more-problems", reason))
        raise IngestError(self.file, problems)
