"""Interface text in the planner's language: gettext catalogues under ``maps/locale``.

English is the source language; German, French, Italian and Slovenian have catalogues. After
changing interface text, ``make messages`` (``python -m maps.messages``) brings the template
and every catalogue up to date, and ``python -m maps.messages --init <lang>`` starts a new
language. Catalogues are read as text by Babel, so no compiled ``.mo`` file is needed.
Untranslated messages fall back to English."""

from __future__ import annotations

import gettext
from functools import lru_cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "en"


def languages() -> list[str]:
    """English and every language with a catalogue."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po"))
    return [DEFAULT_LANGUAGE, *found]


@lru_cache(maxsize=16)
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of ``lang`` (English, that is no translation, when there is none)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT_LANGUAGE or not path.is_file():
        return gettext.NullTranslations()
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    return Catalogue(
        {
            m.id: m.string
            for m in catalog
            if isinstance(m.id, str) and isinstance(m.string, str) and m.string and not m.fuzzy
        }
    )


class Catalogue(gettext.NullTranslations):
    """Translations read from a ``.po`` file's text (simple messages, no plurals)."""

    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self.messages = messages

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)


def pick_language(requested: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a known language, else the browser's first known one."""
    known = languages()
    if requested and requested in known:
        return requested
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in known:
            return code
    return DEFAULT_LANGUAGE


class Text:
    """The ``_`` of one language, for Python code and templates alike."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._t = translations(lang)

    def __call__(self, message: str, **values: object) -> str:
        text = self._t.gettext(message)
        return text.format(**values) if values else text
