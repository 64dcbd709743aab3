"""Command handlers, one module per area; importing them registers them with the service."""


def load() -> None:
    from bot.handlers import conversation, help, ledger, link, profile, requests, stats  # noqa: F401
