"""Keep the interface's message catalogues in step with the code: ``python -m maps.messages``.

Babel extracts every literal ``_("...")`` of the Python code and the templates. Some text
reaches ``_()`` as a value (class labels, named areas, job statuses, quadrants); it is
collected here from where it is defined, so a new class or area cannot go untranslated
unnoticed. The template is rewritten and every language's catalogue updated: new messages
come in empty, vanished ones are dropped.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from geo.areas import named_areas
from geo.atlas import QUADRANTS
from geo.records import DONE, FAILED, QUEUED, RUNNING
from geo.settings import Settings
from maps.classify import SCHEME_LABELS
from maps.i18n import LOCALE_DIR, languages
from maps.styles import CORRECTION_TEXT, legend_entries

ROOT = Path(__file__).resolve().parent.parent
METHOD_MAP = [
    ("maps/**.py", "python"),
    ("services/**.py", "python"),
    ("maps/templates/**.html", "jinja2"),
]
TEMPLATE = LOCALE_DIR / "messages.pot"


def vocabulary(settings: Settings) -> Iterator[str]:
    """Text that the pages pass to ``_()`` as values rather than literals."""
    for method in ("gi_star", "lisa"):
        for _colour, label in legend_entries(method):
            yield label
    yield from CORRECTION_TEXT.values()
    yield from SCHEME_LABELS.values()
    yield from (area.title for area in named_areas(settings).values())
    yield from (QUEUED, RUNNING, DONE, FAILED)
    yield from QUADRANTS


def template(settings: Settings) -> Catalog:
    """Every message of the interface, literals first, in a stable order."""
    catalog = Catalog(project="AlpClusters", fuzzy=False)
    found = extract_from_dir(
        str(ROOT),
        METHOD_MAP,
        {"maps/templates/**.html": {"encoding": "utf-8"}},
        keywords={"_": None},
    )
    for _file, _line, message, _comments, _context in found:
        if isinstance(message, str) and message not in catalog:
            catalog.add(message)
    for message in vocabulary(settings):
        if message not in catalog:
            catalog.add(message)
    return catalog


def write(catalog: Catalog, path: Path) -> None:
    with path.open("wb") as fh:
        write_po(fh, catalog, omit_header=True, no_location=True, width=100)


def update(settings: Settings) -> list[Path]:
    """Rewrite the template and bring every language's catalogue up to it."""
    pot = template(settings)
    write(pot, TEMPLATE)
    written = [TEMPLATE]
    for lang in languages()[1:]:
        path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        write(catalog, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m maps.messages", description=__doc__)
    parser.add_argument("--init", metavar="LANG", help="start the catalogue of a new language")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.init:
        path = LOCALE_DIR / args.init / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            write(Catalog(locale=args.init, project="AlpClusters", fuzzy=False), path)
    for path in update(settings):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
