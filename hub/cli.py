"""The ``hub`` command: run the service and do the admin's chores from a shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from crm_core import migrate
from crm_core.audit import Actor
from crm_core.client_csv import import_clients
from crm_core.clients import ClientBook
from crm_core.errors import DomainError
from crm_core.models import Role
from crm_core.onec.journal import SyncBusy
from crm_core.users import NewUser, UserDirectory
from hub import logs
from hub.config import ConfigError, Settings, load_settings
from hub.context import DatabaseNotReady, HubContext
from hub.onec import OnecSync, run_with_progress

CLI_ACTOR = Actor(user_id=None, username="cli")


def _parser() -> argparse.ArgumentParser:
    config_help = "TOML settings file (default: $HUB_CONFIG, else none)"
    # Accepted before or after the command; SUPPRESS keeps a subcommand's parser from
    # resetting a --config given before the command to None.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=config_help)

    parser = argparse.ArgumentParser(
        prog="hub",
        description="CTI and e-mail middleware: one client base for calls, mail, mailings and 1C.",
    )
    parser.add_argument("--config", metavar="FILE", default=None, help=config_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("run", parents=[common], help="start the service (upgrades the embedded SQLite itself)")

    db = commands.add_parser("db", parents=[common], help="database chores").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    db.add_parser("upgrade", parents=[common], help="apply the schema migrations (needed for PostgreSQL)")

    user = commands.add_parser("user", parents=[common], help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    create = user.add_parser("create", parents=[common], help="create a user (prints a password if none given)")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--password", help="at least 8 characters; generated and printed when omitted")
    create.add_argument("--extension", help="the operator's PBX extension, e.g. 101")
    create.add_argument("--full-name", default="")
    user.add_parser("list", parents=[common], help="list users")
    passwd = user.add_parser("password", parents=[common], help="set a new password (prints it if none given)")
    passwd.add_argument("name")
    passwd.add_argument("--password")

    token = commands.add_parser("token", parents=[common], help="API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    token_create = token.add_parser("create", parents=[common], help="print a new bearer token and nothing else")
    token_create.add_argument("--user", required=True)
    token_create.add_argument("--name", default="cli", help="a label to recognise the token by")

    imp = commands.add_parser("import", parents=[common], help="import data").add_subparsers(
        dest="import_command", required=True, metavar="WHAT"
    )
    imp_clients = imp.add_parser("clients", parents=[common], help="import counterparties from a CSV file")
    imp_clients.add_argument("file", type=Path)
    imp_clients.add_argument("--dry-run", action="store_true", help="check every row, change nothing")
    imp_clients.add_argument(
        "--good-rows", action="store_true", help="import the good rows even if some are bad (default: all or nothing)"
    )

    sync = commands.add_parser("sync", parents=[common], help="sync with other systems").add_subparsers(
        dest="sync_command", required=True, metavar="WITH"
    )
    sync_1c = sync.add_parser("1c", parents=[common], help="sync counterparties with 1C now, with a progress bar")
    sync_1c.add_argument("--connection", help="one [[onec]] by name (default: every one)")
    sync_1c.add_argument("--client", type=int, action="append", help="only this card (repeatable)")

    commands.add_parser(
        "doctor", parents=[common], help="check the database, PBXes, mailboxes, SMTP, 1C and webhook targets"
    )

    config = commands.add_parser("config", parents=[common], help="configuration").add_subparsers(
        dest="config_command", required=True, metavar="ACTION"
    )
    check = config.add_parser("check", parents=[common], help="validate a settings file and say what is wrong")
    check.add_argument("file", nargs="?", help="the file (default: --config or $HUB_CONFIG)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "config":
            return _config_check(args.file or args.config)
        settings = load_settings(args.config)
        logs.configure(settings.log_level, settings.log_format)
        if args.command == "run":
            from hub.server import serve

            asyncio.run(serve(settings))
            return 0
        if args.command == "doctor":
            return asyncio.run(_doctor(settings))
        return asyncio.run(_dispatch(args, settings))
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    except DatabaseNotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _doctor(settings: Settings) -> int:
    from hub.doctor import examine

    verdicts = await examine(settings)
    for verdict in verdicts:
        print(verdict.line())
    failed = sum(not v.ok for v in verdicts)
    print(f"{len(verdicts) - failed} of {len(verdicts)} ok" + (f"; {failed} FAILED" if failed else ""))
    return 1 if failed else 0


def _config_check(file: str | None) -> int:
    try:
        settings = load_settings(file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    source = file or "defaults and environment"
    print(
        f"{source}: OK (database {settings.effective_database_url.split('@')[-1]}, "
        f"http {settings.http_host}:{settings.http_port})"
    )
    return 0


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db":
        await migrate.upgrade(settings.effective_database_url)
        print(f"database at revision {migrate.head_revision()}")
        return 0
    handlers: dict[tuple[str, str], Callable[[argparse.Namespace, HubContext], Awaitable[int]]] = {
        ("user", "create"): _user_create,
        ("user", "list"): _user_list,
        ("user", "password"): _user_password,
        ("token", "create"): _token_create,
        ("import", "clients"): _import_clients,
        ("sync", "1c"): _sync_1c,
    }
    action = getattr(args, f"{args.command}_command")
    context = await HubContext.open(settings)
    try:
        return await handlers[(args.command, action)](args, context)
    finally:
        await context.close()


async def _user_create(args: argparse.Namespace, context: HubContext) -> int:
    password = args.password or secrets.token_urlsafe(12)
    async with context.transaction() as session:
        user = await UserDirectory(session).create(
            NewUser(
                username=args.name,
                role=Role(args.role),
                password=password,
                extension=args.extension,
                full_name=args.full_name,
            )
        )
    print(
        f"created user {user.username} ({user.role.value})"
        + (f", extension {user.extension}" if user.extension else "")
    )
    if not args.password:
        print(f"password: {password}")
    return 0


async def _user_list(args: argparse.Namespace, context: HubContext) -> int:
    async with context.transaction() as session:
        for user in await UserDirectory(session).list():
            state = "" if user.is_active else " (inactive)"
            print(f"{user.username}\t{user.role.value}\t{user.extension or '-'}{state}")
    return 0


async def _user_password(args: argparse.Namespace, context: HubContext) -> int:
    password = args.password or secrets.token_urlsafe(12)
    async with context.transaction() as session:
        directory = UserDirectory(session)
        await directory.update(await directory.by_username(args.name), password=password)
    print(f"password of {args.name} changed" + ("" if args.password else f": {password}"))
    return 0


async def _token_create(args: argparse.Namespace, context: HubContext) -> int:
    async with context.transaction() as session:
        directory = UserDirectory(session)
        token = await directory.create_token(await directory.by_username(args.user), name=args.name)
    print(token)
    return 0


async def _import_clients(args: argparse.Namespace, context: HubContext) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    async with context.transaction() as session:
        report = await import_clients(
            ClientBook(session, context.rules),
            data,
            CLI_ACTOR,
            dry_run=args.dry_run,
            all_or_nothing=not args.good_rows,
        )
    for error in report.errors:
        print(f"{args.file}:{error.line}: {error.reason}", file=sys.stderr)
    summary = {k: v for k, v in report.as_dict().items() if k not in ("errors", "created_ids")}
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if not report.errors else 1


async def _sync_1c(args: argparse.Namespace, context: HubContext) -> int:
    """Run the sync in this process, printing a progress bar per phase and the counts at the end."""
    sync = OnecSync(context)
    names = [args.connection] if args.connection else list(sync.settings)
    if not names:
        print("error: no 1C connection is configured (add an [[onec]] table)", file=sys.stderr)
        return 2
    if args.connection and args.connection not in sync.settings:
        print(f"error: no 1C connection named {args.connection!r}", file=sys.stderr)
        return 2
    failed = False
    for name in names:
        try:
            report = await run_with_progress(sync, name, args.client)
        except SyncBusy as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing to do"
        print(f"{name}: run {report.run_id} {'done' if report.ok else 'FAILED'}: {counts}")
        if report.error:
            print(f"{name}: {report.error}", file=sys.stderr)
            failed = True
    return 1 if failed else 0
