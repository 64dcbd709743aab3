"""The command handlers, one module per area, and the registry the service runs them from.

Each module fills its own :class:`~bot.app.context.Handlers`; the registry below names
them all, so what the bot can do is read here rather than found by import side effects.
Conversations are not commands: the service hands answers and first words to
`on_answer` and `greet`.
"""

from bot.app.context import registry
from bot.app.handlers import (
    conversation,
    export,
    help,
    language,
    ledger,
    link,
    network,
    people,
    profile,
    requests,
    similar,
    stats,
    status,
)
from bot.app.handlers.conversation import greet, on_answer

REGISTRY = registry(
    conversation.handlers,
    export.handlers,
    help.handlers,
    language.handlers,
    ledger.handlers,
    link.handlers,
    network.handlers,
    people.handlers,
    profile.handlers,
    requests.handlers,
    similar.handlers,
    stats.handlers,
    status.handlers,
)

__all__ = ["REGISTRY", "greet", "on_answer"]
