"""``alpclusters users add|list|key|revoke``: accounts and API keys from the shell."""

from __future__ import annotations

from typing import Annotated, Any

import typer

users_app = typer.Typer(help="Accounts, roles, NUTS scopes and API keys.", no_args_is_help=True)


def _accounts() -> Any:
    from geo.settings import Settings
    from geo.store import Store

    return Store(Settings().database_url).accounts


Days = Annotated[int, typer.Option(help="Days until the key expires.")]


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Account name, e.g. anna@provincia.tn.it.")],
    role: Annotated[str, typer.Option(help="viewer, statistician, analyst or admin.")],
    scope: Annotated[
        str, typer.Option(help="Comma-separated NUTS prefixes a statistician may upload.")
    ] = "",
    days: Days = 365,
) -> None:
    """Create an account; its first API key is printed once and never stored."""
    account, key = _accounts().add(name, role, scope.split(","), days)
    scoped = f" for {','.join(account.scope)}" if account.scope else ""
    typer.echo(f"account {account.name}: {account.role}{scoped}")
    typer.echo(f"key (shown once): {key}")


@users_app.command("key")
def key(name: Annotated[str, typer.Argument(help="Existing account.")], days: Days = 365) -> None:
    """Issue another API key for an account."""
    typer.echo(_accounts().issue_key(name, days))


@users_app.command("list")
def list_accounts() -> None:
    """Accounts with their role, scope and keys (ids and expiry only)."""
    for entry in _accounts().all():
        acc = entry["account"]
        state = " (revoked)" if acc.revoked_at else ""
        typer.echo(f"{acc.name}\t{acc.role}\t{','.join(acc.scope) or '-'}{state}")
        for k in entry["keys"]:
            flag = "revoked" if k["revoked"] else f"expires {k['expires_at']:%Y-%m-%d}"
            typer.echo(f"  key {k['id']}\t{flag}")


@users_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Account name, or a key id with --key.")],
    key_only: Annotated[bool, typer.Option("--key", help="Revoke one key by its id.")] = False,
) -> None:
    """Revoke an account and all its keys, or one key."""
    accounts = _accounts()
    if key_only:
        accounts.revoke_key(name)
        typer.echo(f"revoked key {name}")
    else:
        accounts.revoke(name)
        typer.echo(f"revoked account {name} and its keys")
