"""NUTS versions: code lists of NUTS 2013, 2016, 2021 and 2024, detection and conversion.

Everything comes from Eurostat's correspondence workbooks (``nuts_changes`` entries of
``sources.toml``), which list the codes of two consecutive versions side by side with a
change note. One parse is cached as Parquet under the cache directory and kept in memory.
Per pair of consecutive versions and per level, as the workbooks state it:

* the same code in both versions (relabelled, or an "art. 5(2a)" boundary shift that is no
  NUTS amendment) needs nothing;
* two different codes on one row whose note says recoded or "Code change" (and no boundary
  change) are a one-to-one rename;
* every other disappearing code (boundary shift, split, merge, discontinued) is flagged,
  naming the successors the workbook gives.

The NUTS 2013-2016 workbook lists the EU-28 only, so other countries' codes (statistical
regions of CH, NO, TR, ...) start in NUTS 2016: :func:`detect` compares each version on the
countries it lists, and :func:`conversion` reads such codes of a NUTS 2013 table as NUTS 2016.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from geo.errors import InvalidParameterError
from geo.settings import Settings
from geo.sources import locate, source

log = logging.getLogger(__name__)

NUTS_VERSIONS = (2013, 2016, 2021, 2024)
STEPS = ((2013, 2016), (2016, 2021), (2021, 2024))
CACHE_FORMAT = 1

_CODE = re.compile(r"[A-Z]{2}[0-9A-Z]{0,3}")
_TOKEN = re.compile(r"\b[A-Z]{2}[0-9A-Z]{1,3}\b")
_LEVEL_COLUMN = re.compile(r"level ([123])\b", re.IGNORECASE)
_EXPLANATION = "Explanation (new = old)"
# Per workbook: side-by-side sheets (name, header row, change column), the per-level change
# sheets, and sheets listing the newer version only (name, code column, country column).
_BOOKS: dict[
    tuple[int, int], tuple[tuple[tuple[str, int, str], ...], str, tuple[tuple[str, ...], ...]]
] = {
    (2013, 2016): ((("NUTS2013-NUTS2016", 1, "Change"),), "Correspondence NUTS-{}", ()),
    (2016, 2021): (
        (("Changes detailed NUTS 2016-2021", 0, "Change comments"),),
        "Changes NUTS-{}",
        (("NUTS & SR 2021", "Code 2021"),),
    ),
    (2021, 2024): (
        (("NUTS2021- NUTS2024", 0, "Change"), ("SR2021- SR2024", 0, "Change")),
        "Changes NUTS-{}",
        (
            ("NUTS2024", "NUTS Code", "Country code"),
            ("Statistical Regions", "SR Code", "Country code"),
        ),
    ),
}

_Step = tuple[dict[str, str], dict[str, str]]  # one direction: renames, flagged (reasons)
_memo: dict[tuple[Path, float, float], _Model] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class Detection:
    """Which NUTS version a set of codes belongs to.

    Attributes
    ----------
    version
        The best-matching version (ties: ``settings.nuts_year``, then the newest); ``None``
        when no code belongs to a country that any version lists.
    shares
        Version -> share of the distinct codes valid in it, among the codes of the
        countries that version lists (``considered``).
    unmatched
        Distinct codes valid in no version (aggregates such as ``EU27_2020``, typos).
    matched, considered
        Version -> number of distinct codes valid in it / of the countries it lists.
    codes
        Number of distinct codes.
    """

    version: int | None
    shares: dict[int, float]
    unmatched: list[str]
    matched: dict[int, int] = field(default_factory=dict)
    considered: dict[int, int] = field(default_factory=dict)
    codes: int = 0

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "version": self.version,
            "codes": self.codes,
            "shares": {str(v): round(s, 4) for v, s in self.shares.items()},
            "matched": {str(v): n for v, n in self.matched.items()},
            "considered": {str(v): n for v, n in self.considered.items()},
            "unmatched": list(self.unmatched),
        }


@dataclass(frozen=True)
class Conversion:
    """How the codes of NUTS ``source`` map onto NUTS ``target``.

    Attributes
    ----------
    renames
        Source code -> target code for one-to-one recodes (same territory), chained over
        intermediate versions. Unchanged codes are not listed.
    flagged
        Source code -> explanation, for codes whose territory changed (split, merge,
        boundary change) or that have no counterpart in the target version.
    """

    source: int
    target: int
    renames: dict[str, str]
    flagged: dict[str, str]

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "source": self.source,
            "target": self.target,
            "renames": dict(sorted(self.renames.items())),
            "flagged": dict(sorted(self.flagged.items())),
        }


@dataclass(frozen=True)
class _Row:
    """One row of a side-by-side sheet, with the per-level sheets' texts."""

    old: str | None
    new: str | None
    kind: str
    change: str
    detail: str
    explanation: str
    label: str


@dataclass
class _Model:
    lists: dict[int, frozenset[str]]
    countries: dict[int, frozenset[str]]
    steps: dict[tuple[int, int], _Step]
    conversions: dict[tuple[int, int], Conversion] = field(default_factory=dict)


# -- public API ------------------------------------------------------------------------


def code_lists(settings: Settings) -> dict[int, frozenset[str]]:
    """Every code (levels 0-3, extra-regio ``…Z`` codes included) of each NUTS version.

    NUTS 2013 comes from the 2013-2016 workbook (EU-28 only); NUTS 2016 and 2021 from both
    workbooks that list them (NUTS and statistical regions); NUTS 2024 from the 2021-2024
    workbook, whose level-0 codes are its country codes.

    Returns
    -------
    dict
        Version (:data:`NUTS_VERSIONS`) -> frozenset of codes.
    """
    return dict(_model(settings).lists)


def detect(settings: Settings, codes: Collection[str]) -> Detection:
    """Detect the NUTS version of ``codes`` (a table's geo column; duplicates allowed).

    Codes are compared stripped and upper-cased; non-strings and blanks are ignored.

    Returns
    -------
    Detection
        The best version, the share of valid codes per version and the codes valid in none.
    """
    model = _model(settings)
    raw = codes.unique() if isinstance(codes, pd.Series | pd.Index) else set(codes)
    distinct = sorted({c.strip().upper() for c in raw if isinstance(c, str) and c.strip()})
    matched = {v: sum(c in model.lists[v] for c in distinct) for v in NUTS_VERSIONS}
    considered = {v: sum(c[:2] in model.countries[v] for c in distinct) for v in NUTS_VERSIONS}
    shares = {v: matched[v] / considered[v] if considered[v] else 0.0 for v in NUTS_VERSIONS}
    unmatched = [c for c in distinct if not any(c in known for known in model.lists.values())]
    best = _best(shares, settings.nuts_year)
    return Detection(best, shares, unmatched, matched, considered, len(distinct))


def conversion(settings: Settings, source: int, target: int) -> Conversion:
    """The renames and flagged codes that take NUTS ``source`` codes to NUTS ``target``.

    Either direction works (backward, one-to-one renames are inverted). Over several
    versions the renames are chained, and a code is flagged at the first step that changes
    its territory. ``source == target`` gives an empty conversion.

    Raises
    ------
    InvalidParameterError
        When a version is not one of :data:`NUTS_VERSIONS`.
    """
    _check_version("source", source)
    _check_version("target", target)
    model = _model(settings)
    with _lock:
        if (source, target) not in model.conversions:
            model.conversions[(source, target)] = _convert(model, source, target)
        done = model.conversions[(source, target)]
    return Conversion(source, target, dict(done.renames), dict(done.flagged))


def other_versions(settings: Settings, target: int) -> dict[str, int]:
    """Codes valid in some NUTS version but not in ``target`` -> the latest version they
    are valid in."""
    _check_version("target", target)
    lists = _model(settings).lists  # versions ascend: the latest one wins
    return {c: v for v in NUTS_VERSIONS if v != target for c in lists[v] - lists[target]}


def _check_version(name: str, year: int) -> None:
    if year not in NUTS_VERSIONS:
        raise InvalidParameterError(
            f"{name} NUTS version {year!r} is not one of {list(NUTS_VERSIONS)}"
        )


# -- detection and conversion ----------------------------------------------------------


def _best(shares: dict[int, float], preferred: int) -> int | None:
    top = max(shares.values())
    if top <= 0:
        return None
    tied = [v for v, s in shares.items() if abs(s - top) < 1e-12]
    return preferred if preferred in tied else max(tied)


def _path(source: int, target: int) -> list[tuple[int, int]]:
    """The consecutive version pairs from ``source`` to ``target``."""
    i, j = NUTS_VERSIONS.index(source), NUTS_VERSIONS.index(target)
    order = NUTS_VERSIONS[i : j + 1] if i <= j else NUTS_VERSIONS[j : i + 1][::-1]
    return list(zip(order, order[1:], strict=False))


def _start_codes(model: _Model, path: list[tuple[int, int]]) -> dict[str, int]:
    """Codes to convert -> index of their first step: the source version's codes, and the
    codes of countries it does not list from the first version on the path that does."""
    if not path:
        return {}
    start = dict.fromkeys(model.lists[path[0][0]], 0)
    covered = set(model.countries[path[0][0]])
    for k, (version, _) in enumerate(path[1:], start=1):
        start.update({c: k for c in model.lists[version] if c[:2] not in covered})
        covered |= model.countries[version]
    return start


def _convert(model: _Model, source: int, target: int) -> Conversion:
    path = _path(source, target)
    renames: dict[str, str] = {}
    flagged: dict[str, str] = {}
    for code, first in _start_codes(model, path).items():
        final, reason = _walk(model, code, path[first:])
        if reason is not None:
            flagged[code] = reason
        elif final != code:
            renames[code] = final
    return Conversion(source, target, renames, flagged)


def _walk(model: _Model, code: str, path: list[tuple[int, int]]) -> tuple[str, str | None]:
    """Follow ``code`` along ``path``: its final code, or why it is flagged."""
    notes: list[str] = []
    for a, b in path:
        renames, flagged = model.steps[(a, b)]
        if code in renames:
            code = renames[code]
            notes.append(f"recoded to {code} in NUTS {b}")
            continue
        if code in flagged:
            why = flagged[code]
        elif code[:2] not in model.countries[b]:
            why = f"the NUTS {b} workbook lists no {code[:2]} regions"
        elif code not in model.lists[b]:
            why = f"not in NUTS {b}, and the workbook records no change for it"
        else:
            continue
        return code, "; then ".join([*notes, why])
    return code, None


# -- the model: cached parse -> steps --------------------------------------------------


def _model(settings: Settings) -> _Model:
    base = settings.cache_dir
    codes_file = base / f"nuts-versions-codes-v{CACHE_FORMAT}.parquet"
    changes_file = base / f"nuts-versions-changes-v{CACHE_FORMAT}.parquet"
    if not (codes_file.is_file() and changes_file.is_file()):
        _build_cache(settings, codes_file, changes_file)
    stamp = (codes_file, codes_file.stat().st_mtime, changes_file.stat().st_mtime)
    with _lock:
        if stamp not in _memo:
            _memo[stamp] = _assemble(pd.read_parquet(codes_file), pd.read_parquet(changes_file))
        return _memo[stamp]


def _assemble(codes: pd.DataFrame, changes: pd.DataFrame) -> _Model:
    lists = {v: frozenset(codes.loc[codes["version"] == v, "code"]) for v in NUTS_VERSIONS}
    countries = {v: frozenset(c[:2] for c in lists[v]) for v in NUTS_VERSIONS}
    steps: dict[tuple[int, int], _Step] = {}
    for a, b in STEPS:
        part = changes[(changes["source"] == a) & (changes["target"] == b)]
        rows = [
            _Row(o or None, n or None, k, c, d, e, lb)
            for o, n, k, c, d, e, lb in part[list(_Row.__annotations__)].itertuples(index=False)
        ]
        steps[(a, b)], steps[(b, a)] = _build_step(rows, a, b, lists[a], lists[b])
        for code in [c for c in steps[(b, a)][1] if c[:2] not in countries[a]]:
            del steps[(b, a)][1][code]  # a country the older workbook does not list
    return _Model(lists, countries, steps)


# -- parsing the workbooks -------------------------------------------------------------


def _build_cache(settings: Settings, codes_file: Path, changes_file: Path) -> None:
    """Parse the three workbooks and write the two Parquet tables atomically."""
    code_parts, change_parts = [], []
    for a, b in STEPS:
        path = locate(settings, source(settings, "nuts_changes", f"{a}-{b}"))
        rows, codes = _parse_workbook(path, a, b)
        change_parts.append(rows)
        code_parts.append(codes)
        log.info("parsed the NUTS %d-%d workbook %s: %d rows", a, b, path, len(rows))
    codes = pd.concat(code_parts).drop_duplicates().sort_values(["version", "code"])
    changes = pd.concat(change_parts)
    codes_file.parent.mkdir(parents=True, exist_ok=True)
    for frame, target in ((codes, codes_file), (changes, changes_file)):
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        frame.reset_index(drop=True).to_parquet(tmp, index=False)
        tmp.replace(target)


def _parse_workbook(path: Path, a: int, b: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The side-by-side rows and the (version, code) pairs of one workbook."""
    book = pd.ExcelFile(path)
    main, notes_sheet, list_sheets = _BOOKS[(a, b)]
    rows = pd.concat([_main_rows(book, s, h, c, a, b) for s, h, c in main])
    notes = _notes(book, [notes_sheet.format(level) for level in (1, 2, 3)], a, b)
    rows = rows.merge(notes, on=["old", "new"], how="left").fillna("")
    rows = _drop_unpaired_duplicates(rows)
    rows["kind"] = [_kind(*r) for r in rows[["old", "new", "change"]].itertuples(index=False)]
    codes = [
        pd.DataFrame({"version": a, "code": rows["old"][rows["old"] != ""]}),
        pd.DataFrame({"version": b, "code": rows["new"][rows["new"] != ""]}),
        *(_list_sheet(book, b, *spec) for spec in list_sheets),
    ]
    rows.insert(0, "source", a)
    rows.insert(1, "target", b)
    return rows, pd.concat(codes)


def _cell(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _code(value: object) -> str:
    text = _cell(value)
    return text if _CODE.fullmatch(text) else ""


def _main_rows(
    book: pd.ExcelFile, sheet: str, header: int, change: str, a: int, b: int
) -> pd.DataFrame:
    raw = pd.read_excel(book, sheet_name=sheet, header=header, dtype=str)
    labels = {int(m[1]): col for col in raw.columns if (m := _LEVEL_COLUMN.search(str(col)))}
    old, new = raw[f"Code {a}"].map(_code), raw[f"Code {b}"].map(_code)
    frame = pd.DataFrame({"old": old, "new": new, "change": raw[change].map(_cell)})
    frame["label"] = [  # the region's name, to pair old-only and new-only rows
        _cell(raw.at[i, labels[len(code) - 2]]).casefold() if len(code) > 2 else ""
        for i, code in zip(raw.index, old.where(old != "", new), strict=True)
    ]
    return frame[(frame["old"] != "") | (frame["new"] != "")]


def _notes(book: pd.ExcelFile, sheets: list[str], a: int, b: int) -> pd.DataFrame:
    """The per-level change sheets' texts, keyed by the (old, new) code pair."""
    columns = {f"Code {a}": ("old", _code), f"Code {b}": ("new", _code)}
    columns |= {"Change": ("detail", _cell), _EXPLANATION: ("explanation", _cell)}
    raws = [pd.read_excel(book, sheet_name=sheet, header=0, dtype=str) for sheet in sheets]
    notes = pd.concat(
        pd.DataFrame({name: raw[col].map(f) for col, (name, f) in columns.items()}) for raw in raws
    )
    notes = notes[(notes["old"] != "") | (notes["new"] != "")]
    return notes.groupby(["old", "new"], as_index=False).agg(_join_texts)


def _join_texts(texts: Iterable[str]) -> str:
    return "; ".join(dict.fromkeys(t for t in texts if t))


def _list_sheet(book: pd.ExcelFile, version: int, sheet: str, *columns: str) -> pd.DataFrame:
    """Codes of a list sheet; a country-code column adds the level-0 codes it lacks."""
    raw = pd.read_excel(book, sheet_name=sheet, header=0, dtype=str)
    codes = set().union(*(raw[c].map(_code) for c in columns)) - {""}
    return pd.DataFrame({"version": version, "code": sorted(codes)})


def _drop_unpaired_duplicates(rows: pd.DataFrame) -> pd.DataFrame:
    """Drop the bare "discontinued" row of an old code that another row recodes.

    The 2013-2016 workbook lists FR7 both as recoded to FRK (identical territory, "FRK=FR7")
    and among the discontinued NUTS-1 regions of France.
    """
    paired = set(rows.loc[(rows["old"] != "") & (rows["new"] != ""), "old"])
    return rows[~((rows["new"] == "") & rows["old"].isin(paired))]


def _kind(old: str, new: str, change: str) -> str:
    """Classify a row: same, recode, boundary, split, merge, discontinued or new."""
    text = change.casefold()
    if old and new:
        if old == new:
            return "same"
        if "boundary" not in text and ("recod" in text or "code change" in text):
            return "recode"
        return "boundary"  # a code change the workbook does not call a pure recode
    if old:
        return next((k for k in ("split", "merge", "boundary") if k in text), "discontinued")
    return "new"


# -- one step: renames, successors and the reasons for flags ---------------------------


def _build_step(
    rows: list[_Row], a: int, b: int, old_list: frozenset[str], new_list: frozenset[str]
) -> tuple[_Step, _Step]:
    """The forward (``a`` -> ``b``) and backward (``b`` -> ``a``) step of one workbook."""
    succ, pred = _relations(rows, old_list, new_list)
    renames = {r.old: r.new for r in rows if r.kind == "recode" and r.old and r.new}
    flagged = {
        r.old: _forward_reason(r, b, succ, pred)
        for r in rows
        if r.old and r.kind not in ("same", "recode")
    }
    inverse = {new: old for old, new in renames.items()}
    by_new = {r.new: r for r in rows if r.new}
    back = {
        code: _backward_reason(
            by_new.get(code) or _Row(None, code, "new", "", "", "", ""), a, b, succ, pred
        )
        for code in new_list - old_list - inverse.keys()
    }
    return (renames, flagged), (inverse, back)


def _relations(
    rows: list[_Row], old_list: frozenset[str], new_list: frozenset[str]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Old code -> the new codes that took (part of) its territory, and the inverse.

    From boundary-change rows, the codes the notes name (``ex-`` codes of the same level on
    new regions' rows, new codes on disappearing regions' rows), old-only and new-only rows
    of one country, level and name, and "X merged into Y" in the per-level sheets.
    """
    succ: dict[str, set[str]] = defaultdict(set)
    gone, fresh = old_list - new_list, new_list - old_list
    for r in rows:
        text = f"{r.change} {r.explanation}"
        if r.kind == "boundary" and r.old and r.new:
            succ[r.old].add(r.new)
        if r.new and r.kind in ("new", "boundary"):
            for code in _tokens(text, gone, len(r.new)):
                succ[code].add(r.new)
        if r.old and r.kind not in ("same", "recode"):
            succ[r.old].update(_tokens(text, fresh, len(r.old)))
    _pair_labels(rows, succ)
    _merged_into(rows, succ, fresh)
    pred: dict[str, set[str]] = defaultdict(set)
    for old, news in succ.items():
        for new in news:
            pred[new].add(old)
    return succ, pred


def _tokens(text: str, allowed: frozenset[str], length: int) -> set[str]:
    """The codes of one level (``length`` characters) in ``text`` that are in ``allowed``."""
    return {t for t in _TOKEN.findall(text) if len(t) == length and t in allowed}


def _pair_labels(rows: list[_Row], succ: dict[str, set[str]]) -> None:
    """Link the only old-only and the only new-only row of a country, level and name (the
    2021-2024 workbook lists a shifted region as its old code, then its new code)."""
    olds: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    news: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for r in rows:
        if r.label and r.old and not r.new:
            olds[(r.old[:2], len(r.old), r.label)].append(r.old)
        elif r.label and r.new and not r.old:
            news[(r.new[:2], len(r.new), r.label)].append(r.new)
    for key, old in olds.items():
        if len(old) == 1 and len(news.get(key, [])) == 1:
            succ[old[0]].add(news[key][0])


def _merged_into(rows: list[_Row], succ: dict[str, set[str]], fresh: frozenset[str]) -> None:
    """Successors of merged regions that only a sentence names ("ex-X merged into ex-Y")."""
    texts = "; ".join(r.detail for r in rows if r.detail)
    for r in rows:
        if r.old and r.kind == "merge" and not succ.get(r.old):
            found = re.search(rf"{r.old}\)?\s[^.;]*?merged (?:in)?to (?:ex-)?(\w+)", texts)
            if found:
                into = found[1]
                succ[r.old].update({into} if into in fresh else succ.get(into, set()))


def _and(codes: Iterable[str]) -> str:
    items = sorted(codes)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _quote(row: _Row) -> str:
    words = _join_texts([row.change, row.detail, row.explanation])
    return f" (workbook: {words})" if words else ""


def _forward_reason(
    row: _Row, year: int, succ: dict[str, set[str]], pred: dict[str, set[str]]
) -> str:
    """Why an old code cannot be converted to NUTS ``year``, naming its successors."""
    code = str(row.old)
    after = sorted(succ.get(code, set()))
    if row.kind == "boundary":
        text = _boundary_reason(code, row.new, after, year, pred)
    elif len(after) > 1:
        text = f"split into {_and(after)} in NUTS {year}"
    elif after and (partners := pred[after[0]] - {code}):
        text = f"merged with {_and(partners)} into {after[0]} in NUTS {year}"
    elif after:
        text = f"replaced by {after[0]} with other boundaries in NUTS {year}"
    else:
        verb = {"split": "split", "merge": "merged"}.get(row.kind, "discontinued")
        text = f"{verb} in NUTS {year} (no successor named)"
    return text + _quote(row)


def _boundary_reason(
    code: str, new: str | None, after: list[str], year: int, pred: dict[str, set[str]]
) -> str:
    main = new or (after[0] if len(after) == 1 else None)
    if main is None:
        where = f": territory now in {_and(after)}" if after else ""
        return f"boundary change in NUTS {year}{where}"
    text = f"boundary change in NUTS {year}: now {main}"
    if rest := [c for c in after if c != main]:
        text += f" (parts went to {_and(rest)})"
    if partners := pred.get(main, set()) - {code}:
        text += f", together with {_and(partners)}"
    return text


def _backward_reason(
    row: _Row, a: int, b: int, succ: dict[str, set[str]], pred: dict[str, set[str]]
) -> str:
    """Why a NUTS ``b`` code has no NUTS ``a`` equivalent, naming its predecessors."""
    before = sorted(pred.get(str(row.new), set()))
    if row.kind == "boundary" and row.old:
        text = f"boundary change in NUTS {b}: replaced {row.old}"
        if others := [c for c in before if c != row.old]:
            text += f" together with {_and(others)}"
    elif len(before) > 1:
        text = f"created in NUTS {b} from {_and(before)}"
    elif before and len(succ[before[0]]) > 1:
        text = f"created in NUTS {b} from the split of {before[0]}"
    elif before:
        text = f"replaced {before[0]} with other boundaries in NUTS {b}"
    else:
        text = f"new in NUTS {b}"
    return f"{text}; no NUTS {a} equivalent" + _quote(row)
