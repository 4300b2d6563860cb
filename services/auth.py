"""Who is asking: API keys (``Authorization: Bearer`` or ``X-API-Key``, or the start
page's cookie) resolved to accounts, and the role and scope checks of each operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from geo.accounts import Account, Action
from geo.errors import AuthenticationError
from services.dependencies import SettingsDep, StoreDep

KEY_COOKIE = "alpclusters_key"
bearer = HTTPBearer(auto_error=False, description="An AlpClusters API key as a bearer token.")
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An AlpClusters API key.")


def credential(
    request: Request,
    token: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header: Annotated[str | None, Depends(api_key)],
) -> str | None:
    """The key sent with the request, if any."""
    if token is not None:
        return token.credentials
    return header or request.cookies.get(KEY_COOKIE) or None


def account(store: StoreDep, key: Annotated[str | None, Depends(credential)]) -> Account | None:
    """The account of the key sent (``None`` without one); a bad key is a 401."""
    return None if key is None else store.accounts.authenticate(key)


AccountDep = Annotated[Account | None, Depends(account)]


def reader(settings: SettingsDep, who: AccountDep) -> Account | None:
    """Reads are open to anonymous visitors unless the settings say otherwise."""
    if who is None and not settings.anonymous_read:
        raise AuthenticationError("reading needs an API key on this service")
    return who


def allowed(action: Action) -> Callable[..., Account]:
    """A dependency giving the account, which must exist and have a role allowing
    ``action`` (401 without a credential, 403 with the wrong role)."""

    def check(who: AccountDep) -> Account:
        if who is None:
            raise AuthenticationError(
                f"this operation ({action}) needs an API key: send 'Authorization: Bearer "
                "<key>' or 'X-API-Key: <key>'; an administrator issues keys with "
                "`alpclusters users add`"
            )
        who.require(action)
        return who

    return check


Uploader = Annotated[Account, Depends(allowed("upload"))]
Analyst = Annotated[Account, Depends(allowed("analyse"))]
ReaderDep = Depends(reader)
