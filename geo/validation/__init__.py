"""Validating chunks of indicator tables, with a report naming every problem.

:func:`geo.formats.read_chunks` turns an upload of any layout into chunks of one tidy shape
(``indicator, geo, time, value, flag, unit, row, column``); a :class:`Validator` checks them
one by one, returns the valid rows normalised, and finds the whole-table problems (duplicate
keys, mixed NUTS levels, no data) in :meth:`Validator.finish` without holding the table.
"""

from geo.validation.cells import (
    FLAG_LETTERS,
    FLAG_PATTERN,
    Categories,
    Numbers,
    arrow_strings,
    parse_numbers,
    parse_years,
)
from geo.validation.report import MAX_PROBLEMS, Reason, Report
from geo.validation.validator import EMPTY, REASONS, Validator

__all__ = [
    "EMPTY",
    "FLAG_LETTERS",
    "FLAG_PATTERN",
    "MAX_PROBLEMS",
    "REASONS",
    "Categories",
    "Numbers",
    "Reason",
    "Report",
    "Validator",
    "arrow_strings",
    "parse_numbers",
    "parse_years",
]
