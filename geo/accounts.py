"""Accounts, roles, NUTS scopes, API keys and the audit log.

An account has one role: a **viewer** reads; a **statistician** also uploads, but only
data whose regions fall under the NUTS prefixes of its scope (``ITH2``, ``AT3``); an
**analyst** runs analyses; an **admin** may do everything. Keys are random, shown once
and stored as SHA-256 hashes; they expire and can be revoked, as can whole accounts.
Every write is recorded in the audit log: who, what, when and a content hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo.errors import (
    AuthenticationError,
    InvalidParameterError,
    PermissionDeniedError,
    UnknownAccountError,
)
from geo.schema import accounts, api_keys, audit_log

Role = Literal["viewer", "statistician", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "statistician", "analyst", "admin")
Action = Literal["read", "upload", "analyse", "admin"]
ALLOWED: dict[Action, frozenset[str]] = {
    "read": frozenset(ROLES),
    "upload": frozenset({"statistician", "admin"}),
    "analyse": frozenset({"analyst", "admin"}),
    "admin": frozenset({"admin"}),
}
DEFAULT_KEY_DAYS = 365
BOOTSTRAP_ADMIN = "admin"  # the account of ALPCLUSTERS_ADMIN_KEY
_KEY = re.compile(r"^alp_([0-9a-f]{16})_[A-Za-z0-9_-]{20,}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_PREFIX = re.compile(r"^[A-Z]{2}[0-9A-Z]{0,3}$")


@dataclass(frozen=True)
class Account:
    """Who a credential belongs to."""

    name: str
    role: Role
    scope: tuple[str, ...]
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    def may(self, action: Action) -> bool:
        return self.revoked_at is None and self.role in ALLOWED[action]

    def outside_scope(self, codes: Iterable[str]) -> list[str]:
        """The codes this account may not write (none for an admin)."""
        if self.role == "admin":
            return []
        return sorted({c for c in codes if not c.startswith(self.scope)})

    def require(self, action: Action, regions: Iterable[str] | None = None) -> None:
        """Raise :class:`~geo.errors.PermissionDeniedError` unless the role allows
        ``action`` and every region lies within the scope (for uploads)."""
        if not self.may(action):
            allowed = sorted(ALLOWED[action])
            raise PermissionDeniedError(
                f"account {self.name!r} ({self.role}) may not {action}; roles that may: {allowed}"
            )
        if action == "upload" and regions is not None:
            outside = self.outside_scope(regions)
            if outside:
                shown = ", ".join(outside[:20]) + (" …" if len(outside) > 20 else "")
                raise PermissionDeniedError(
                    f"account {self.name!r} may upload regions under {list(self.scope)} only; "
                    f"{len(outside)} region(s) lie outside: {shown}",
                    regions=outside,
                )


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its public id."""
    key_id = secrets.token_hex(8)
    return f"alp_{key_id}_{secrets.token_urlsafe(32)}", key_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(stamp: dt.datetime | None) -> dt.datetime | None:
    if stamp is None:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def parse_scope(scope: Iterable[str]) -> tuple[str, ...]:
    """NUTS prefixes, upper case, checked for shape."""
    prefixes = tuple(sorted({p.strip().upper() for p in scope if p.strip()}))
    bad = [p for p in prefixes if not _PREFIX.match(p)]
    if bad:
        raise InvalidParameterError(
            f"not NUTS code prefixes: {bad}; give country or region codes such as AT3, ITH2"
        )
    return prefixes


class Accounts:
    """Accounts, keys and the audit log in the store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self, name: str, role: str, scope: Iterable[str] = (), days: int = DEFAULT_KEY_DAYS
    ) -> tuple[Account, str]:
        """Create an account and its first key (returned once, never stored)."""
        if not _NAME.match(name):
            raise InvalidParameterError(
                f"account name {name!r}: letters, digits and _.@- only, at most 128"
            )
        if role not in ROLES:
            raise InvalidParameterError(f"role {role!r}: one of {list(ROLES)}")
        prefixes = parse_scope(scope)
        if role == "statistician" and not prefixes:
            raise InvalidParameterError("a statistician needs a NUTS scope, such as AT3 or ITH2")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(accounts.c.name).where(accounts.c.name == name)).first():
                raise InvalidParameterError(f"account {name!r} exists already")
            conn.execute(
                accounts.insert().values(
                    name=name, role=role, scope=",".join(prefixes), created_at=_now()
                )
            )
            key = self._issue(conn, name, days)
        return self.account(name), key

    def issue_key(self, name: str, days: int = DEFAULT_KEY_DAYS) -> str:
        """Another key for an existing account."""
        self.account(name)
        with self.engine.begin() as conn:
            return self._issue(conn, name, days)

    def _issue(self, conn: sa.Connection, name: str, days: int) -> str:
        if days < 1:
            raise InvalidParameterError(f"a key must be valid for at least 1 day, not {days}")
        key, key_id = new_key()
        now = _now()
        conn.execute(
            api_keys.insert().values(
                id=key_id,
                account=name,
                hash=hash_key(key),
                created_at=now,
                expires_at=now + dt.timedelta(days=days),
            )
        )
        return key

    def account(self, name: str) -> Account:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.name == name)).first()
        if row is None:
            raise UnknownAccountError(f"no account {name!r}")
        return _account(row._asdict())

    def all(self) -> list[dict[str, Any]]:
        """Every account with its keys' ids, expiries and whether they are revoked."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(accounts).order_by(accounts.c.name)).all()
            keys = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        out = []
        for row in rows:
            acc = _account(row._asdict())
            out.append(
                {
                    "account": acc,
                    "keys": [
                        {
                            "id": k.id,
                            "expires_at": _utc(k.expires_at),
                            "revoked": k.revoked_at is not None,
                        }
                        for k in keys
                        if k.account == acc.name
                    ],
                }
            )
        return out

    def revoke(self, name: str) -> None:
        """Revoke an account and every key of it."""
        self.account(name)
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(accounts.update().where(accounts.c.name == name).values(revoked_at=now))
            conn.execute(
                api_keys.update()
                .where(api_keys.c.account == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )

    def revoke_key(self, key_id: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=_now())
            )
        if not done.rowcount:
            raise UnknownAccountError(f"no key {key_id!r}")

    def authenticate(self, key: str) -> Account:
        """The account of a valid key; :class:`~geo.errors.AuthenticationError` otherwise
        (the same message for unknown and wrong keys)."""
        found = _KEY.match(key.strip())
        if not found:
            raise AuthenticationError("the credential is not an AlpClusters API key")
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(api_keys, accounts.c.revoked_at.label("account_revoked"))
                .join(accounts, accounts.c.name == api_keys.c.account)
                .where(api_keys.c.id == found.group(1))
            ).first()
        if row is None or not hmac.compare_digest(row.hash, hash_key(key.strip())):
            raise AuthenticationError("unknown API key")
        if row.revoked_at is not None or row.account_revoked is not None:
            raise AuthenticationError(f"API key {row.id} has been revoked")
        expires = _utc(row.expires_at)
        if expires is not None and expires <= _now():
            raise AuthenticationError(f"API key {row.id} expired on {expires:%Y-%m-%d}")
        return self.account(row.account)

    def bootstrap(self, key: str) -> None:
        """Make ``key`` (from ``ALPCLUSTERS_ADMIN_KEY``) a key of the admin account, so a
        fresh deployment can be administered without touching the database."""
        found = _KEY.match(key.strip())
        if not found:
            raise InvalidParameterError(
                "ALPCLUSTERS_ADMIN_KEY must look like alp_<16 hex>_<at least 20 characters>; "
                "make one with `alpclusters users key`"
            )
        for attempt in (1, 2):  # workers starting together race to insert the same rows
            try:
                return self._bootstrap(found.group(1), key.strip())
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise

    def _bootstrap(self, key_id: str, key: str) -> None:
        now = _now()
        with self.engine.begin() as conn:
            if not conn.execute(
                sa.select(accounts.c.name).where(accounts.c.name == BOOTSTRAP_ADMIN)
            ).first():
                conn.execute(
                    accounts.insert().values(name=BOOTSTRAP_ADMIN, role="admin", created_at=now)
                )
            if not conn.execute(
                sa.select(api_keys.c.id).where(api_keys.c.id == key_id)
            ).first():
                conn.execute(
                    api_keys.insert().values(
                        id=key_id,
                        account=BOOTSTRAP_ADMIN,
                        hash=hash_key(key),
                        created_at=now,
                        expires_at=now + dt.timedelta(days=36_500),
                    )
                )

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        content_hash: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """One line of the audit log."""
        with self.engine.begin() as conn:
            conn.execute(
                audit_log.insert().values(
                    at=_now(),
                    actor=actor,
                    action=action,
                    target=target,
                    content_hash=content_hash,
                    detail=detail,
                )
            )

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest lines of the audit log, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
            ).all()
        return [{**r._asdict(), "at": _utc(r.at)} for r in rows]


def _account(row: dict[str, Any]) -> Account:
    return Account(
        name=row["name"],
        role=row["role"],
        scope=tuple(p for p in row["scope"].split(",") if p),
        created_at=_utc(row["created_at"]) or _now(),
        revoked_at=_utc(row["revoked_at"]),
    )
