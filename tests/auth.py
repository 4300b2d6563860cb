"""The test settings' bootstrap admin key as request headers."""

from __future__ import annotations

from geo.settings import Settings


def headers(settings: Settings) -> dict[str, str]:
    """``Authorization: Bearer <admin key>`` of ``settings`` (see the ``settings`` fixture)."""
    assert settings.admin_key is not None, "the test settings carry an admin key"
    return {"Authorization": f"Bearer {settings.admin_key.get_secret_value()}"}
