"""The `sif-bot` command line (SPEC §9)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.app.observability import configure_logging
from bot.domain.records import Role
from bot.ports import StoreUnavailable
from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from bot.bootstrap import App


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sif-bot", description="The SIF peer network bot.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="migrate, then start every configured adapter (console if none)")
    console = sub.add_parser("console", help="chat with the bot in the terminal")
    console.add_argument("--as", dest="name", help="who you are (default: your login name)")
    console.add_argument("--script", help="play 'NAME: text' lines from FILE ('-' for stdin)")
    sub.add_parser("demo", help="play the whole loop on a fresh temporary database")
    from bot.entrypoints import simulate

    simulate.add_arguments(
        sub.add_parser("simulate", help="try the community's rules on a synthetic network")
    )
    export = sub.add_parser("export", help="CSV of a community's data, or a JSON backup")
    export.add_argument(
        "what", nargs="?", default="ledger", choices=["ledger", "members", "requests"]
    )
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--community", default="console", help="community key (e.g. slack:T0001)")
    export.add_argument("--out", help="file to write (default: standard output)")
    restore = sub.add_parser("import", help="restore a JSON backup into an empty database")
    restore.add_argument("file")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_cmd", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to the newest")
    admin = sub.add_parser("admin", help="operator commands")
    admin_sub = admin.add_subparsers(dest="admin_cmd", required=True)
    role = admin_sub.add_parser("role", help="set a role: sif-bot admin role console:ann staff")
    role.add_argument("identity", help="platform:external_id, e.g. slack:T0001:U0002")
    role.add_argument("role", choices=[r.value for r in Role])
    grant = admin_sub.add_parser(
        "grant", help="credit SIF: sif-bot admin grant console:ann 5 prize"
    )
    grant.add_argument("identity")
    grant.add_argument("amount")
    grant.add_argument("reason", nargs="+")
    matrix = sub.add_parser(
        "matrix", help="the Matrix device's trust in members' devices (with the bot stopped)"
    )
    matrix_sub = matrix.add_subparsers(dest="matrix_cmd", required=True)
    devices = matrix_sub.add_parser("devices", help="a member's devices and their trust")
    devices.add_argument("member", help="@user:server")
    for name, what in (
        ("verify", "trust a device (compare its session key with the member's client first)"),
        ("block", "never give a device the room keys"),
    ):
        step = matrix_sub.add_parser(name, help=what)
        step.add_argument("member", help="@user:server")
        step.add_argument("device", help="the device id, as `devices` lists it")
    federation = sub.add_parser("federation", help="this node in the network of factories")
    federation_sub = federation.add_subparsers(dest="federation_cmd", required=True)
    keygen = federation_sub.add_parser(
        "keygen", help="write a new ed25519 signing key and print its public key"
    )
    keygen.add_argument("--out", required=True, help="the key file to write (SIF_NODE_KEY_FILE)")
    ping = federation_sub.add_parser(
        "ping", help="check that a partner hears this node and trusts its key"
    )
    ping.add_argument("partner", help="the partner's name in SIF_PARTNERS_FILE")
    check = federation_sub.add_parser(
        "check", help="prove this ledger and a partner's agree on every committed transfer"
    )
    check.add_argument("partner", nargs="?", help="one partner (default: every partner)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"sif-bot: invalid setting {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(level=_log_level(args, settings))
    from conversations.loader import FlowError, load_flows

    try:
        load_flows(settings.sif_flows_path)  # a bad community file stops start-up here
    except FlowError as exc:
        print(f"sif-bot: invalid setting SIF_FLOWS_PATH: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        code = asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        code = 130
    except StoreUnavailable as exc:
        print(f"sif-bot: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


def _log_level(args: argparse.Namespace, settings: Settings) -> str:
    """SIF_LOG_LEVEL, else INFO for a bot serving a chat platform and WARNING for the
    rest (the console and one-off commands, whose output is for a person)."""
    if settings.sif_log_level:
        return settings.sif_log_level
    serving = args.cmd == "run" and (settings.slack_enabled or settings.matrix_enabled)
    return "INFO" if serving else "WARNING"


async def _federation_door(app: App, settings: Settings) -> Any:
    """With the console and a node configured: the HTTP server for partners' messages
    (and /healthz), which the console otherwise does without. Its runner, or None."""
    if app.federation is None:
        return None
    from aiohttp import web

    from bot.entrypoints.http import Monitor

    monitor = Monitor(app.bot)
    monitor.federation = app.federation
    web_app = web.Application()
    web_app.add_routes(monitor.routes())
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    print(f"Federation: node {app.federation.name} listens on port {settings.port}.", flush=True)
    return runner


async def _serve(app: App, settings: Settings) -> int:
    """Run the configured platform adapters, the scheduler and the HTTP server until stopped."""
    import signal

    from aiohttp import ClientSession, web

    from bot.bootstrap import start_platforms
    from bot.entrypoints.http import Monitor
    from bot.entrypoints.scheduler import start_scheduler

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    session = ClientSession()
    monitor = Monitor(app.bot)
    monitor.federation = app.federation
    routes = monitor.routes()
    platforms = await start_platforms(app, session)
    for name, status in platforms.statuses.items():
        monitor.add_adapter(name, status)
    for note in platforms.notes:
        print(note, flush=True)
    closers, drains, web_app = platforms.closers, platforms.drains, platforms.web_app
    web_app.add_routes(routes)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.port).start()
    scheduler = start_scheduler(app.bot)
    monitor.scheduler = scheduler
    await app.relay.flush()  # anything left from before a restart
    # The peer tables and texts are read while the first events come in.
    warming = asyncio.create_task(app.bot.warm())
    print(f"sif-bot is running (health at http://localhost:{settings.port}/healthz).", flush=True)
    try:
        await stop.wait()
    finally:
        # Graceful stop: take no new events, let the ones in flight finish and their
        # answers go out, then send what is still in the outbox.
        print("sif-bot is stopping: finishing the work in flight.", flush=True)
        for close in closers:
            await close()
        await runner.cleanup()  # stops listening, waits for requests being handled
        for drain in drains:
            await drain()
        await scheduler.stop()
        try:
            await app.relay.flush()
        except Exception:
            logging.getLogger(__name__).exception("could not flush the outbox while stopping")
        await session.close()
        warming.cancel()
    return 0


async def _export(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from bot.bootstrap import backup, build

    if args.format == "json":
        content = json.dumps(await backup(settings), ensure_ascii=False).encode("utf-8")
    else:
        from bot.app.handlers.export import export_csv

        app = await build(settings)
        try:
            found = await export_csv(app.bot.uow_factory, args.community, args.what)
        finally:
            await app.close()
        if found is None:
            print(f"sif-bot: there is no community {args.community!r}", file=sys.stderr)
            return 2
        content = found
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, content)
        print(f"Wrote {len(content):,} bytes to {args.out}.", file=sys.stderr)
    else:
        sys.stdout.write(content.decode("utf-8"))
    return 0


async def _import(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from bot.bootstrap import restore

    try:
        text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
        counts = await restore(settings, json.loads(text))
    except (OSError, ValueError) as exc:
        print(f"sif-bot: cannot import {args.file}: {exc}", file=sys.stderr)
        return 2
    total = sum(counts.values())
    print(f"Imported {total:,} rows into {settings.database_url}.")
    return 0


async def _matrix(args: argparse.Namespace, settings: Settings) -> int:
    if not (settings.matrix_homeserver and settings.matrix_user_id):
        print("sif-bot: set MATRIX_HOMESERVER and MATRIX_USER_ID first", file=sys.stderr)
        return 2
    from bot.bootstrap import PlatformError, matrix_devices

    try:
        lines = await matrix_devices(
            settings,
            args.member,
            args.matrix_cmd if args.matrix_cmd != "devices" else "list",
            getattr(args, "device", None),
        )
    except PlatformError as exc:
        print(f"sif-bot: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _read_script(name: str) -> list[str] | None:
    if name == "-":
        return sys.stdin.readlines()
    path = Path(name)
    return path.read_text(encoding="utf-8").splitlines() if path.is_file() else None


def _keygen(out: str) -> int:
    import os

    from bot.domain.federation import new_key

    path = Path(out)
    if path.exists():
        print(
            f"sif-bot: {out} exists; a node keeps its key (remove it first to replace it)",
            file=sys.stderr,
        )
        return 2
    private, public = new_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(private + "\n")
    print(f"Wrote the private key to {out} (only you may read it).")
    print(f"Public key, for your partners' files: {public}")
    return 0


async def _ask(node: Any, partner: str, kind: str) -> tuple[int, Any]:
    """Post one signed message to a partner and read its answer: (status, body), where
    a refusal's body is its reason and an unreachable partner's status is 0."""
    import json

    from aiohttp import ClientError, ClientSession

    url, data = node.seal(node.outbound(partner, kind, {}))
    try:
        async with (
            ClientSession() as session,
            session.post(url, data=data, headers={"Content-Type": "application/json"}) as response,
        ):
            text = await response.text()
            status = response.status
    except (ClientError, OSError) as exc:
        return 0, f"unreachable at {url} ({exc})"
    try:
        body = json.loads(text)
    except ValueError:
        return status, text[:200]
    if status != 200:
        return status, f"answered {status} at {url}: {body.get('refused', body)}"
    return status, body


async def _federation(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.federation import FederationError
    from bot.bootstrap import build

    try:
        app = await build(settings)
    except (FederationError, ValueError) as exc:
        print(f"sif-bot: {exc}", file=sys.stderr)
        return 2
    try:
        node = app.federation
        if node is None:
            print("sif-bot: set SIF_NODE_NAME (and the key and partners) first", file=sys.stderr)
            return 2
        wanted = [args.partner] if args.partner else sorted(node.partners)
        unknown = [p for p in wanted if p not in node.partners]
        if unknown:
            known = ", ".join(sorted(node.partners)) or "none"
            print(f"sif-bot: {unknown[0]!r} is not a partner (partners: {known})", file=sys.stderr)
            return 2
        if args.federation_cmd == "ping":
            status, body = await _ask(node, args.partner, "hello")
            if status == 200:
                url = node.partners[args.partner].inbox
                print(f"{args.partner}: reachable at {url}; it trusts this node's key.")
                return 0
            print(f"{args.partner}: {body}")
            return 1
        if args.federation_cmd == "check":
            from bot.app.network import local_chain
            from bot.domain.federation import Link, first_difference

            failed = 0
            for partner in wanted:
                status, body = await _ask(node, partner, "chain")
                if status != 200 or not isinstance(body, dict):
                    print(f"{partner}: cannot compare: {body}")
                    failed += 1
                    continue
                theirs = [Link(str(x), int(a), str(h)) for x, a, h in body.get("chain", [])]
                mine = await local_chain(node, partner)
                differs = first_difference(mine, theirs)
                if differs is None:
                    head = mine[-1].hash[:16] if mine else "empty"
                    count = f"{len(mine)} transfer" + ("" if len(mine) == 1 else "s")
                    print(f"{partner}: both ledgers agree on {count} (chain {head}).")
                else:
                    print(f"{partner}: the ledgers differ, first at {differs}.")
                    failed += 1
            return 1 if failed else 0
        return 2
    finally:
        await app.close()


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.bootstrap import build, migrate

    if args.cmd == "db":
        await migrate(settings)
        print("Database is at the newest version.")
        return 0
    if args.cmd == "export":
        return await _export(args, settings)
    if args.cmd == "import":
        return await _import(args, settings)
    if args.cmd == "simulate":
        from bot.entrypoints import simulate

        return await simulate.run(args)
    if args.cmd == "demo":
        from bot.entrypoints.demo import run_demo

        return await run_demo()
    if args.cmd == "admin":
        from bot.entrypoints import admin

        return await admin.run(args, settings)
    if args.cmd == "matrix":
        return await _matrix(args, settings)
    if args.cmd == "federation":
        if args.federation_cmd == "keygen":
            return _keygen(args.out)
        return await _federation(args, settings)
    from bot.app.federation import FederationError

    try:
        app = await build(settings)
    except FederationError as exc:
        print(f"sif-bot: {exc}", file=sys.stderr)
        return 2
    try:
        from bot.bootstrap import console_chat, console_messenger, console_script

        if args.cmd == "console":
            app.relay.register(console_messenger(settings))
            if args.script:
                lines = await asyncio.to_thread(_read_script, args.script)
                if lines is None:
                    print(f"sif-bot: no script file {args.script}", file=sys.stderr)
                    return 2
                bad = await console_script(app, lines)
                return 1 if bad else 0
            return await console_chat(app, args.name or getpass.getuser())
        # run
        if not (settings.slack_enabled or settings.matrix_enabled):
            from bot.entrypoints.scheduler import start_scheduler

            print(
                "No Slack or Matrix credentials are set, so sif-bot starts the console "
                f"on {settings.database_url}.",
                flush=True,
            )
            app.relay.register(console_messenger(settings))
            scheduler = start_scheduler(app.bot)
            door = await _federation_door(app, settings)
            if door is not None:
                await app.relay.flush()  # what a partner is owed from before a restart
            try:
                return await console_chat(app, getpass.getuser())
            finally:
                if door is not None:
                    await door.cleanup()
                await scheduler.stop()
        return await _serve(app, settings)
    finally:
        await app.close()
