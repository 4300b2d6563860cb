"""NUTS versions: code lists, detection and conversion, against independent references.

References, all read from the mirror through the project's loaders and manifest:

* the GISCO NUTS 2021 (1:3M) and NUTS 2024 (1:20M) boundary layers;
* rOpenGov's harmonised NUTS code history (its own parse of the Eurostat workbooks);
* the mirror's CSV exports of the workbooks' NUTS-3 change sheets, which the module never
  reads (it reads the side-by-side sheets of all levels);
* real tables: Eurostat ``nama_10r_3gdp`` (NUTS 2021) and the 2017 LFS export
  ``lfst_r_lfe2en2`` (NUTS 2013, see PROVENANCE.md 6a).
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

import geo.nuts_versions as nv
from geo.boundaries import load_boundaries
from geo.errors import DataSourceError, InvalidParameterError
from geo.indicators import load_eurostat
from geo.nuts_versions import (
    NUTS_VERSIONS,
    STEPS,
    code_lists,
    conversion,
    detect,
    other_versions,
)
from geo.settings import Settings
from geo.sources import locate, source

NUTS_CODE = re.compile(r"[A-Z]{2}[0-9A-Z]{0,3}")
TOKEN = re.compile(r"\b[A-Z]{2}[0-9A-Z]{1,3}\b")
STEP_IDS = [f"{a}-{b}" for a, b in STEPS]


def extra_regio(code: str) -> bool:
    """Extra-regio codes: the country code followed by Z, ZZ or ZZZ."""
    return len(code) > 2 and set(code[2:]) == {"Z"}


def head(reason: str) -> str:
    """An explanation without the workbook's words quoted at its end."""
    return reason.split(" (workbook: ")[0]


@pytest.fixture(scope="module")
def lists(settings: Settings) -> dict[int, frozenset[str]]:
    return code_lists(settings)


@pytest.fixture(scope="module")
def gisco(settings: Settings) -> dict[int, set[str]]:
    """Region codes of the real GISCO layers: NUTS 2021 1:3M and NUTS 2024 1:20M."""
    return {
        2021: set(load_boundaries(settings, 2021, "03M").index),
        2024: set(load_boundaries(settings, 2024, "20M").index),
    }


def changes_csv(settings: Settings, a: int, b: int) -> pd.DataFrame:
    """The mirror's CSV export of the workbook's NUTS-3 change sheet (old, new, change, text)."""
    path = locate(settings, source(settings, "nuts_changes", f"nuts3-{a}-{b}"))
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return pd.DataFrame(
        {
            "old": raw[f"Code {a}"].str.strip(),
            "new": raw[f"Code {b}"].str.strip(),
            "label": raw["Label"].str.strip(),
            "change": raw["Change"].str.strip().str.lower(),
            "text": raw["Change"] + " " + raw["Explanation (new = old)"],
        }
    )


def changes_territory(row: dict[str, str], old: str, new: str) -> bool:
    """A new region's row, or a recode with a boundary change (not a pure recode, whose
    explanation only restates it: "FRB01=FR241")."""
    return bool(new) and (not old or "boundary" in row["change"])


def place(lists: dict[int, frozenset[str]], row: dict[str, str], own: tuple[int, int]):
    """The version pair a CSV row describes: its own when its codes fit, else another.

    The 2016-2021 sheet still carries rows of the 2013-2016 changes (UKM, UKN, FI1D, PL926),
    and puts two new regions' codes in the old column ("new; merge of ...").
    """
    old, new = row["old"], row["new"]
    if old and not new and row["change"].startswith("new"):
        old, new = "", old
    for a, b in [own, *[s for s in STEPS if s != own]]:
        fits_old = not old or old in lists[a]
        fits_new = not new or (new in lists[b] and (old or new not in lists[a]))
        if (old or new) and fits_old and fits_new:
            return (a, b), old, new
    return None, old, new


def expected_from_csv(settings, lists, a, b):
    """Renames and flagged NUTS-3 codes per version pair, derived from one CSV's rows."""
    renames: dict[tuple[int, int], dict[str, str]] = {s: {} for s in STEPS}
    flagged: dict[tuple[int, int], set[str]] = {s: set() for s in STEPS}
    unplaced = []
    for row in changes_csv(settings, a, b).to_dict("records"):
        step, old, new = place(lists, row, (a, b))
        if step is None:
            unplaced.append(row)
        elif old and new and old != new and "boundary" not in row["change"]:
            renames[step][old] = new
        elif old and (not new or old != new):
            flagged[step].add(old)
        if step is not None and changes_territory(row, old, new):
            # regions a new or changed region's text names as its parts ("ex-ITG2A")
            gone = lists[step[0]] - lists[step[1]]
            flagged[step] |= {c for c in TOKEN.findall(row["text"]) if len(c) == 5} & gone
    return renames, flagged, unplaced


# -- code lists ------------------------------------------------------------------------


def test_nuts_2021_list_is_the_gisco_2021_layer_plus_extra_regio(
    lists: dict[int, frozenset[str]], gisco: dict[int, set[str]]
) -> None:
    """Every GISCO 2021 region is in the workbook list; the list's only extra codes are the
    extra-regio codes (Z, ZZ, ZZZ of each of the 37 countries), which have no geometry."""
    wb = lists[2021]
    assert gisco[2021] - wb == set()
    extra = wb - gisco[2021]
    assert extra == {c for c in wb if extra_regio(c)}
    countries = {c for c in wb if len(c) == 2}
    assert len(countries) == 37
    assert extra == {c + z for c in countries for z in ("Z", "ZZ", "ZZZ")}


def test_nuts_2024_list_is_the_gisco_2024_layer_plus_extra_regio(
    lists: dict[int, frozenset[str]], gisco: dict[int, set[str]]
) -> None:
    """Same for NUTS 2024, except that GISCO's 2024 layer also draws Bosnia-Herzegovina's
    statistical regions (BA, BA0, BA01-BA03) and Ukraine's outline (UA), which the NUTS
    2021-2024 workbook does not list."""
    wb = lists[2024]
    wb_countries = {c[:2] for c in wb}
    missing = gisco[2024] - wb
    assert {c[:2] for c in missing} == {"BA", "UA"}
    assert missing == {c for c in gisco[2024] if c[:2] not in wb_countries}
    extra = wb - gisco[2024]
    assert extra == {c for c in wb if extra_regio(c)}
    assert {c for c in wb if len(c) == 2} <= gisco[2024]  # level 0 from the country columns
    assert not any(c.startswith("UK") for c in wb)  # the UK left NUTS in 2024


def test_lists_match_ropengov_history(settings: Settings, lists: dict[int, frozenset[str]]) -> None:
    """rOpenGov's code history (its own parse of the workbooks) has the same 2013, 2016 and
    2021 codes; it marks a few 2013 codes as '(part)' of a later region."""
    path = locate(settings, source(settings, "nuts_changes", "ropengov-1999-2021"))
    history = pd.read_csv(path, dtype=str)
    for year in (2013, 2016, 2021):
        codes = set(history[f"code_{year}"].dropna().str.replace(" (part)", "", regex=False))
        assert codes == lists[year], year


# -- detection -------------------------------------------------------------------------


def test_gdp_table_is_detected_as_nuts_2021(settings: Settings, gisco: dict[int, set[str]]) -> None:
    """nama_10r_3gdp: every NUTS code is a GISCO 2021 region or extra-regio, while some are
    not GISCO 2024 regions (the old Thuringia districts); detected as 2021 whichever the
    preferred version."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    codes = set(frame["geo"])
    nuts = {c for c in codes if NUTS_CODE.fullmatch(c)}
    assert {c for c in nuts - gisco[2021] if not extra_regio(c)} == set()
    assert {c for c in nuts - gisco[2024] if not extra_regio(c)}
    for preferred in (2021, 2024):
        found = detect(settings.model_copy(update={"nuts_year": preferred}), frame["geo"])
        assert found.version == 2021
        assert found.shares[2021] == 1.0
        assert found.unmatched == sorted(codes - nuts)  # the EU27_2020 aggregate
    assert found.describe()["version"] == 2021


def test_lfs_table_is_detected_as_nuts_2013(settings: Settings, gisco: dict[int, set[str]]) -> None:
    """The 2017 LFS export uses NUTS 2013 codes that no later version has (FR71, IE01, ...)."""
    frame, _ = load_eurostat(settings, "lfst_r_lfe2en2_nuts2_2008_2016")
    found = detect(settings, frame["geo"])
    assert found.version == 2013
    assert found.shares[2013] == 1.0
    assert found.unmatched == []
    assert found.matched[2013] == found.considered[2013]
    assert found.codes == frame["geo"].nunique()
    assert set(frame["geo"]) - gisco[2021]  # not a NUTS 2021 table


def test_gdp_table_recoded_back_to_2016_is_detected_as_2016(settings: Settings) -> None:
    """Real 2021 codes, taken back to 2016 by the renames, without the codes that have no
    2016 equivalent, are detected as NUTS 2016."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    back = conversion(settings, 2021, 2016)
    recoded = [back.renames.get(c, c) for c in frame["geo"] if c not in back.flagged]
    assert set(recoded) != set(frame["geo"])
    found = detect(settings, recoded)
    assert found.version == 2016
    assert found.shares[2016] == 1.0


def test_ties_go_to_the_preferred_version_then_the_newest(
    settings: Settings, lists: dict[int, frozenset[str]]
) -> None:
    """Codes valid in every version (here Austria's) tie: the settings' version wins."""
    common = sorted(c for c in frozenset.intersection(*lists.values()) if c.startswith("AT"))
    assert common
    for preferred in (2021, 2024):
        s = settings.model_copy(update={"nuts_year": preferred})
        assert detect(s, common).version == preferred
    assert nv._best({2013: 1.0, 2016: 1.0, 2021: 0.5, 2024: 0.5}, 2021) == 2016
    nothing = detect(settings, ["EU27_2020", "", "  "])
    assert nothing.version is None and nothing.unmatched == ["EU27_2020"]


# -- conversion ------------------------------------------------------------------------


def test_round_trip_of_the_real_2021_nuts3_codes(
    settings: Settings, lists: dict[int, frozenset[str]], gisco: dict[int, set[str]]
) -> None:
    """2021 -> 2016 with one-to-one renames only, then 2016 -> 2021: every code returns."""
    nuts3 = {c for c in gisco[2021] if len(c) == 5}
    back, forth = conversion(settings, 2021, 2016), conversion(settings, 2016, 2021)
    kept = nuts3 - back.flagged.keys()
    as_2016 = {c: back.renames.get(c, c) for c in kept}
    assert set(as_2016.values()) <= lists[2016]
    assert {c: forth.renames.get(old, old) for c, old in as_2016.items()} == {c: c for c in kept}
    assert {c for c in nuts3 if c in back.renames}, "no NUTS-3 recode between 2016 and 2021"
    assert {c for c in nuts3 if c in back.flagged} <= nuts3 - lists[2016]
    assert {old: new for new, old in back.renames.items()} == forth.renames


@pytest.mark.parametrize("step", STEPS, ids=STEP_IDS)
def test_nuts3_changes_match_the_csv_export(
    settings: Settings, lists: dict[int, frozenset[str]], step: tuple[int, int]
) -> None:
    """Each CSV export of a 'Changes NUTS-3' sheet gives the same renames and flagged codes
    as the module's parse of the side-by-side sheet: in both directions, for every row of
    every CSV that describes this pair of versions."""
    expected_renames: dict[str, str] = {}
    expected_flags: set[str] = set()
    for a, b in STEPS:
        renames, flagged, unplaced = expected_from_csv(settings, lists, a, b)
        expected_renames |= renames[step]
        expected_flags |= flagged[step]
        # rows fitting no version pair contradict another row of the same CSV (2021-2024:
        # NO074 "Name change" to NO074, after NO074 "Split")
        codes = changes_csv(settings, a, b)["old"]
        assert all((codes == r["old"]).sum() > 1 for r in unplaced), unplaced
    conv = conversion(settings, *step)
    countries = {c[:2] for c in lists[step[1]]}
    assert {o: n for o, n in conv.renames.items() if len(o) == 5} == expected_renames
    ours = {c for c in conv.flagged if len(c) == 5 and c[:2] in countries}
    assert ours == expected_flags
    assert all("records no change" not in r for r in conv.flagged.values())


@pytest.mark.parametrize("step", STEPS, ids=STEP_IDS)
def test_successors_named_in_the_csv_are_in_the_explanations(
    settings: Settings, lists: dict[int, frozenset[str]], step: tuple[int, int]
) -> None:
    """The old codes a new region's row names ("merge of ex-A and B", "= ex-X") are flagged
    with that new region as successor, and the new region, taken back, names them."""
    a, b = step
    gone = lists[a] - lists[b]
    forth, back = conversion(settings, a, b), conversion(settings, b, a)
    checked = 0
    for row in changes_csv(settings, a, b).to_dict("records"):
        placed, old, new = place(lists, row, step)
        if placed != step or not new or new in lists[a] or not changes_territory(row, old, new):
            continue
        for named in set(TOKEN.findall(row["text"])) & gone:
            if len(named) == len(new) and named != old:
                assert new in head(forth.flagged[named]), (named, forth.flagged[named])
                assert named in head(back.flagged[new]), (new, back.flagged[new])
                checked += 1
    assert checked, "no successor named in this CSV"


def test_chained_conversion_composes_the_csv_changes(
    settings: Settings, lists: dict[int, frozenset[str]]
) -> None:
    """2013 -> 2021 at NUTS 3 equals the 2013-2016 CSV changes followed by the 2016-2021
    ones: recodes compose (e.g. Croatia's HR041 -> HR050 via the unchanged 2016 code), and a
    change of territory at either step flags the code. Codes of countries the 2013 workbook
    does not list (Norway's statistical regions) are taken as NUTS 2016 codes."""
    r1, f1, _ = expected_from_csv(settings, lists, 2013, 2016)
    r2, f2, _ = expected_from_csv(settings, lists, 2016, 2021)
    first = r1[(2013, 2016)] | r2[(2013, 2016)]
    then = r1[(2016, 2021)] | r2[(2016, 2021)]
    flagged_first = f1[(2013, 2016)] | f2[(2013, 2016)]
    flagged_then = f1[(2016, 2021)] | f2[(2016, 2021)]
    eu28 = {c[:2] for c in lists[2013]}
    later_countries = {c for c in lists[2016] if c[:2] not in eu28 and len(c) == 5}
    expected_renames, expected_flags = {}, set()
    for code in {c for c in lists[2013] if len(c) == 5} | later_countries:
        mid = first.get(code, code)
        if code in flagged_first or mid in flagged_then:
            expected_flags.add(code)
        elif then.get(mid, mid) != code:
            expected_renames[code] = then.get(mid, mid)
    conv = conversion(settings, 2013, 2021)
    assert {o: n for o, n in conv.renames.items() if len(o) == 5} == expected_renames
    assert {c for c in conv.flagged if len(c) == 5} == expected_flags
    assert conv.renames["HR041"] == "HR050"
    assert conv.renames["NO011"] == "NO081"


@pytest.mark.parametrize("country", ["SI", "IE", "DE"])
def test_slovenian_irish_and_german_changes(
    settings: Settings, lists: dict[int, frozenset[str]], country: str
) -> None:
    """What the CSVs say about one country, step by step, is what the conversions do.

    The 2016-2021 sheet has no SI, IE or DE row (their changes came in 2013-2016, IE and DE,
    and 2021-2024, DE's Thuringia); SI has no NUTS-3 change in any of the three steps.
    """
    for a, b in STEPS:
        csv = changes_csv(settings, a, b)
        rows = csv[(csv["old"].str[:2] == country) | (csv["new"].str[:2] == country)]
        conv = conversion(settings, a, b)
        recoded = rows[(rows["old"] != "") & (rows["new"] != "") & (rows["old"] != rows["new"])]
        recoded = recoded[~recoded["change"].str.contains("boundary")]
        ours = {o: n for o, n in conv.renames.items() if o[:2] == country and len(o) == 5}
        assert ours == dict(zip(recoded["old"], recoded["new"], strict=True))
        gone = set(rows.loc[(rows["old"] != "") & (rows["old"] != rows["new"]), "old"])
        flagged = {c for c in conv.flagged if c[:2] == country and len(c) == 5}
        assert flagged == gone - set(recoded["old"])
        for old, new in _same_name_pairs(rows):
            assert head(conv.flagged[old]).endswith(f"now {new}") or new in head(conv.flagged[old])


def _same_name_pairs(rows: pd.DataFrame) -> Iterator[tuple[str, str]]:
    """(old, new) for an old-only and a new-only CSV row with the same region name."""
    olds = rows[(rows["old"] != "") & (rows["new"] == "")]
    news = rows[(rows["old"] == "") & (rows["new"] != "")]
    for label, old in zip(olds["label"], olds["old"], strict=True):
        match = news.loc[news["label"] == label, "new"]
        if len(match) == 1:
            yield old, match.iloc[0]


def test_other_versions_against_the_gisco_layers(
    settings: Settings, gisco: dict[int, set[str]], lists: dict[int, frozenset[str]]
) -> None:
    """Codes GISCO draws in 2024 but not in 2021 are NUTS 2024 codes when the target is 2021,
    and GISCO 2021 regions missing from 2024 were last valid in 2021."""
    older = other_versions(settings, 2021)
    newer = other_versions(settings, 2024)
    for code in gisco[2024] - gisco[2021] - {c for c in gisco[2024] if c[:2] in ("BA", "UA")}:
        assert older[code] == 2024
    for code in gisco[2021] - gisco[2024]:
        assert newer[code] == 2021
    assert not older.keys() & lists[2021]
    frame, _ = load_eurostat(settings, "lfst_r_lfe2en2_nuts2_2008_2016")
    lfs_only = set(frame["geo"]) - lists[2021]
    assert lfs_only and {older[c] for c in lfs_only} <= {2013, 2016}


def test_equal_versions_and_bad_versions(settings: Settings) -> None:
    same = conversion(settings, 2021, 2021)
    assert same.renames == {} and same.flagged == {}
    assert same.describe() == {"source": 2021, "target": 2021, "renames": {}, "flagged": {}}
    with pytest.raises(InvalidParameterError, match=r"2010.*\[2013, 2016, 2021, 2024\]"):
        conversion(settings, 2010, 2021)
    with pytest.raises(InvalidParameterError, match="target"):
        other_versions(settings, 2020)


# -- caching and the data source -------------------------------------------------------


def test_second_calls_are_fast_and_do_not_read_the_workbooks(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first parse, a fresh process (memo cleared) reads only the Parquet cache."""
    frame, _ = load_eurostat(settings, "nama_10r_3gdp")
    conversion(settings, 2013, 2024)
    monkeypatch.setattr(nv, "_memo", {})
    monkeypatch.setattr(nv, "locate", _no_workbooks)
    start = time.perf_counter()
    assert set(code_lists(settings)) == set(NUTS_VERSIONS)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(5):
        detect(settings, frame["geo"])
        conversion(settings, 2013, 2024)
    warm = (time.perf_counter() - start) / 5
    assert cold < 2.0, cold
    assert warm < 0.05, warm


def _no_workbooks(*args: object) -> Path:
    raise AssertionError("the workbooks were read again")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture()
def workbook_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The mirror's three workbooks served over HTTP on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    for a, b in STEPS:
        shutil.copy(locate(settings, source(settings, "nuts_changes", f"{a}-{b}")), root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def test_workbooks_downloaded_without_a_mirror(
    settings: Settings, workbook_server: str, tmp_path: Path
) -> None:
    """Without a mirror the workbooks come from their URLs (here a local server), are parsed
    into a new cache, and give the same lists and conversions as the mirror's copies."""
    nuts_dir = tmp_path / "nuts"
    nuts_dir.mkdir()
    manifest = (settings.nuts_dir / "sources.toml").read_text(encoding="utf-8")
    official = "https://ec.europa.eu/eurostat/documents/345175/629341"
    assert manifest.count(official) == len(STEPS)
    (nuts_dir / "sources.toml").write_text(manifest.replace(official, workbook_server))
    s = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_mirror=None,
        allow_download=True,
        nuts_dir=nuts_dir,
        database_url="sqlite:///:memory:",
    )
    assert code_lists(s) == code_lists(settings)
    assert conversion(s, 2016, 2024) == conversion(settings, 2016, 2024)
    assert len(list((s.cache_dir / "downloads").glob("nuts_changes-*.xlsx"))) == len(STEPS)
    assert list(s.cache_dir.glob("nuts-versions-*.parquet"))


def test_mirror_only_entries_are_never_downloaded(settings: Settings, tmp_path: Path) -> None:
    """The CSV exports have no official URL: without them in the mirror, a clear error."""
    empty = tmp_path / "mirror"
    empty.mkdir()
    s = settings.model_copy(update={"data_mirror": empty, "allow_download": True})
    with pytest.raises(DataSourceError, match="mirror-only"):
        locate(s, source(s, "nuts_changes", "nuts3-2016-2021"))
