"""Manage desk accounts from the command line.

    python -m agent_desk.users add <username> --role agent|supervisor|trainer [--display-name "Lan"]
    python -m agent_desk.users passwd <username>
    python -m agent_desk.users disable|enable <username>
    python -m agent_desk.users list

The password is read from standard input (first line) when it is not a terminal, otherwise prompted
twice; it is never taken from the command line, where it would land in the shell history.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from agent_desk import accounts, db
from agent_desk.config import ConfigError, Settings


def read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise accounts.AccountError("passwords do not match")
    return first


async def run(args: argparse.Namespace, settings: Settings) -> str:
    engine = db.make_engine(settings.database_url)
    try:
        await db.create_schema(engine)
        if args.command == "add":
            agent = await accounts.create(
                engine, args.username, read_password(), args.role, args.display_name or args.username
            )
            return f"created {agent.role} {agent.username!r} ({agent.display_name})"
        if args.command == "passwd":
            await accounts.set_password(engine, args.username, read_password())
            return f"password of {args.username!r} changed; its sessions were closed"
        if args.command in {"disable", "enable"}:
            await accounts.set_active(engine, args.username, args.command == "enable")
            return f"{args.username!r} {args.command}d"
        rows = await accounts.list_all(engine)
        return "\n".join(
            f"{a.username}\t{a.role}\t{'active' if on else 'disabled'}\t{a.display_name}" for a, on in rows
        )
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent_desk.users", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="create an account (password on stdin or prompted)")
    add.add_argument("username")
    add.add_argument("--role", choices=accounts.ROLES, default="agent")
    add.add_argument("--display-name", help="name shown to customers, e.g. 'Lan'")
    for name in ("passwd", "disable", "enable"):
        sub.add_parser(name).add_argument("username")
    sub.add_parser("list")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        print(asyncio.run(run(args, settings)))
    except (ConfigError, accounts.AccountError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
