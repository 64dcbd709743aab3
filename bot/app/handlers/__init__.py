"""Command handlers, one module per area; importing them registers them with the service."""


def load() -> None:
    from bot.app.handlers import (  # noqa: F401
        conversation,
        export,
        help,
        ledger,
        link,
        people,
        profile,
        requests,
        stats,
    )
