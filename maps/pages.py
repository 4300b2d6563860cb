"""The planners' HTML pages around the maps (start page, progress, errors), rendered with
Jinja2 templates from ``maps/templates`` in the page's language."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from maps.i18n import Text

TEMPLATES = Path(__file__).resolve().parent / "templates"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Autoescaping templates; ``_`` is passed per page, so one environment serves every
    language."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, _: Text, **context: Any) -> str:
    """``template`` with ``context``; the interface text goes through ``_``."""
    return environment().get_template(template).render(_=_, lang=_.lang, **context)
