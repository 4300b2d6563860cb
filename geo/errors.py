"""Exceptions raised by the library. The web layer maps them to HTTP statuses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class AlpClustersError(Exception):
    """Base class of every error the library raises on purpose."""

    code = "alpclusters-error"
    title = "AlpClusters error"


class NotFoundError(AlpClustersError):
    """Something that was asked for by name does not exist."""

    code = "not-found"
    title = "Not found"


class UnknownAreaError(NotFoundError):
    code = "unknown-area"
    title = "Unknown area"


class UnknownRegionError(NotFoundError):
    code = "unknown-region"
    title = "Unknown NUTS code"


class UnknownDatasetError(NotFoundError):
    code = "unknown-dataset"
    title = "Unknown dataset"


class UnknownAnalysisError(NotFoundError):
    code = "unknown-analysis"
    title = "Unknown analysis"


class UnknownCatchmentError(NotFoundError):
    code = "unknown-catchment"
    title = "Unknown catchment"


class AuthenticationError(AlpClustersError):
    """No credential, or one that is unknown, expired or revoked."""

    code = "unauthenticated"
    title = "Authentication required"


class PermissionDeniedError(AlpClustersError):
    """The account's role, or its NUTS scope, does not allow this."""

    code = "forbidden"
    title = "Permission denied"

    def __init__(self, message: str, regions: list[str] | None = None) -> None:
        super().__init__(message)
        self.regions = regions or []

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (from a reading child process)
        return type(self), (str(self), self.regions)


class UnknownAccountError(NotFoundError):
    code = "unknown-account"
    title = "Unknown account"


class AnalysisNotReadyError(AlpClustersError):
    """The analysis exists but has no results (yet): it is queued, running or failed."""

    code = "analysis-not-ready"
    title = "Analysis not ready"


class InvalidParameterError(AlpClustersError, ValueError):
    """A parameter has a value outside its allowed set or range.

    It is a ``ValueError`` too, so pydantic validators that raise it report a validation error.
    """

    code = "invalid-parameter"
    title = "Invalid parameter"


class DataSourceError(AlpClustersError):
    """No configured source could deliver a file."""

    code = "data-source-unavailable"
    title = "Data source unavailable"


class IngestError(AlpClustersError):
    """An input table failed validation; ``problems`` lists every finding."""

    code = "invalid-table"
    title = "Invalid input table"

    def __init__(
        self,
        file: str,
        problems: Iterable[dict[str, object]],
        report: dict[str, Any] | None = None,
    ) -> None:
        self.file = file
        self.problems = list(problems)
        self.report = report  # the whole validation report, when there is one
        first: dict[str, object] = (
            self.problems[0] if self.problems else {"file": file, "reason": "invalid"}
        )
        n = len(self.problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n > 0 else ""
        super().__init__(describe(first) + more)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (from a reading child process)
        return type(self), (self.file, self.problems, self.report)

    def renamed(self, path: str, name: str) -> IngestError:
        """The same error naming the file ``name`` wherever it said ``path`` (where the file
        waits on disk) or that path's file name: in the file field and in every reason."""
        base = path.replace("\\", "/").rsplit("/", 1)[-1]

        def clean(value: object) -> object:
            if not isinstance(value, str):
                return value
            return value.replace(path, name).replace(base, name)

        problems = [{k: clean(v) for k, v in p.items()} for p in self.problems]
        return type(self)(str(clean(self.file)), problems, self.report)


class TooLargeError(IngestError):
    """An input is over one of the configured limits (bytes, rows, columns, cell length,
    decompressed size, parsing time or memory)."""

    code = "too-large"
    title = "Input over a limit"


class RateLimitedError(AlpClustersError):
    """A credential (or, without one, a client address) sent more requests than allowed."""

    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (str(self), self.retry_after)


class StoreUnavailableError(AlpClustersError):
    """The database cannot be reached; the request may be retried."""

    code = "store-unavailable"
    title = "Database unavailable"


def describe(problem: dict[str, object]) -> str:
    """One line naming a problem's file, row, column and value, then the reason."""
    where = [f"{problem['file']}"]
    for key in ("row", "column", "value"):
        if problem.get(key) is not None:
            where.append(f"{key} {problem[key]!r}" if key == "value" else f"{key} {problem[key]}")
    return ", ".join(where) + f": {problem.get('reason')}"


def closest(value: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` options that look like ``value``, for 'did you mean' hints."""
    import difflib

    return difflib.get_close_matches(value, list(options), n=n, cutoff=0.5)
