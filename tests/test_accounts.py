"""Accounts, keys and the audit log on SQLite and on a real PostgreSQL: keys are stored only
as hashes, expire and can be revoked; roles and NUTS scopes decide what an account may do."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
import sys

import pytest
import sqlalchemy as sa

from geo.accounts import ALLOWED, ROLES, Accounts
from geo.errors import AuthenticationError, InvalidParameterError, PermissionDeniedError
from geo.schema import api_keys, audit_log
from geo.settings import Settings
from geo.store import Store


@pytest.fixture
def accounts(database_url: str) -> Accounts:
    return Store(database_url).accounts


def test_a_key_authenticates_its_account_and_only_its_hash_is_stored(accounts: Accounts) -> None:
    account, key = accounts.add("anna", "statistician", ["ith2", "AT3"])
    assert account.scope == ("AT3", "ITH2")
    assert accounts.authenticate(key) == account
    with accounts.engine.connect() as conn:
        rows = [r._asdict() for r in conn.execute(sa.select(api_keys))]
    assert len(rows) == 1 and rows[0]["hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert not any(key in str(v) for v in rows[0].values())
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError, match="unknown"):
        accounts.authenticate(wrong)
    with pytest.raises(AuthenticationError, match="not an AlpClusters API key"):
        accounts.authenticate("Bearer nonsense")


def test_keys_expire_and_can_be_revoked(accounts: Accounts) -> None:
    _, first = accounts.add("bob", "analyst")
    second = accounts.issue_key("bob", days=30)
    with accounts.engine.begin() as conn:  # first key: its expiry has passed
        key_id = first.split("_")[1]
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(expires_at=past))
    with pytest.raises(AuthenticationError, match="expired"):
        accounts.authenticate(first)
    assert accounts.authenticate(second).name == "bob"
    accounts.revoke_key(second.split("_")[1])
    with pytest.raises(AuthenticationError, match="revoked"):
        accounts.authenticate(second)
    third = accounts.issue_key("bob")
    accounts.revoke("bob")
    with pytest.raises(AuthenticationError, match="revoked"):
        accounts.authenticate(third)


@pytest.mark.parametrize("role", ROLES)
def test_roles_allow_exactly_their_actions(accounts: Accounts, role: str) -> None:
    account, _ = accounts.add(f"user-{role}", role, ["AT"] if role == "statistician" else [])
    for action, roles in ALLOWED.items():
        assert account.may(action) == (role in roles), action  # type: ignore[arg-type]
        if role in roles:
            account.require(action)  # type: ignore[arg-type]
        else:
            with pytest.raises(PermissionDeniedError, match=role):
                account.require(action)  # type: ignore[arg-type]


def test_a_statistician_uploads_only_within_the_scope(
    accounts: Accounts, settings: Settings
) -> None:
    from geo.boundaries import load_boundaries

    codes = list(load_boundaries(settings).index)
    account, _ = accounts.add("tn", "statistician", ["ITH2"])
    inside = [c for c in codes if c.startswith("ITH2")]
    outside = [c for c in codes if c.startswith(("ITH1", "AT3"))]
    account.require("upload", inside)
    with pytest.raises(PermissionDeniedError) as refused:
        account.require("upload", inside + outside)
    assert refused.value.regions == sorted(outside)
    admin, _ = accounts.add("root", "admin")
    admin.require("upload", codes)


@pytest.mark.parametrize(
    ("name", "role", "scope", "message"),
    [
        ("anna", "boss", [], "role"),
        ("anna", "statistician", [], "needs a NUTS scope"),
        ("anna", "statistician", ["ITH2; DROP TABLE"], "not NUTS code prefixes"),
        ("../etc", "viewer", [], "account name"),
    ],
    ids=["unknown-role", "statistician-without-scope", "bad-prefix", "bad-name"],
)
def test_bad_accounts_are_refused(
    accounts: Accounts, name: str, role: str, scope: list[str], message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        accounts.add(name, role, scope)
    assert accounts.all() == []


def test_bootstrap_admin_key_and_audit_log(accounts: Accounts) -> None:
    from geo.accounts import new_key

    key, _ = new_key()
    accounts.bootstrap(key)
    accounts.bootstrap(key)  # idempotent: every service start does it
    admin = accounts.authenticate(key)
    assert admin.role == "admin"
    accounts.record(admin.name, "upload", "dataset gdp v2", "ab" * 32, {"rows": 3})
    accounts.record(admin.name, "revoke", "account bob")
    lines = accounts.audit()
    assert [(r["action"], r["target"]) for r in lines] == [
        ("revoke", "account bob"),
        ("upload", "dataset gdp v2"),
    ]
    assert lines[1]["content_hash"] == "ab" * 32 and lines[1]["detail"] == {"rows": 3}
    assert lines[0]["at"] >= lines[1]["at"]
    with accounts.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar() == 2


def test_cli_users(tmp_path: object, settings: Settings) -> None:
    """``alpclusters users add|list|revoke`` as an administrator runs them."""
    import os
    from pathlib import Path

    db = Path(str(tmp_path)) / "users.db"
    env = {**os.environ, "ALPCLUSTERS_DATABASE_URL": f"sqlite:///{db}"}
    env["ALPCLUSTERS_DATA_MIRROR"] = str(settings.data_mirror)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from services.cli import main; main()", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    added = cli("users", "add", "anna", "--role", "statistician", "--scope", "ITH2")
    assert added.returncode == 0, added.stderr
    key = added.stdout.split("key (shown once): ")[1].strip()
    assert Store(f"sqlite:///{db}").accounts.authenticate(key).scope == ("ITH2",)
    listed = cli("users", "list")
    assert "anna\tstatistician\tITH2" in listed.stdout and key not in listed.stdout
    assert cli("users", "revoke", "anna").returncode == 0
    with pytest.raises(AuthenticationError):
        Store(f"sqlite:///{db}").accounts.authenticate(key)
    bad = cli("users", "add", "x", "--role", "boss")
    assert bad.returncode == 2 and "role 'boss'" in bad.stderr
