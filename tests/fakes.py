"""Fakes for the ports the core does not own: a clock that tests move, a messenger that records."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.messages import Delivery, Inbound, Outbound
from bot.ports import ManualClock


class FakeClock(ManualClock):
    """The core's manual clock, starting on a Monday morning unless told otherwise."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__(start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


class RecordingMessenger:
    """Keeps every message it was asked to send, in order."""

    def __init__(self, platform: str) -> None:
        self.platform = platform
        self.sent: list[Outbound] = []
        self.fail_next = 0

    async def send(self, message: Outbound) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("platform unavailable")
        self.sent.append(message)

    def to(self, who: str) -> list[str]:
        return [m.text for m in self.sent if m.to == who and m.delivery is not Delivery.CHANNEL]

    def clear(self) -> None:
        self.sent.clear()


def said(
    name: str, text: str, *, event_id: str | None = None, channel: str | None = None
) -> Inbound:
    return Inbound(
        "console", "console", name, text, display_name=name, channel=channel, event_id=event_id
    )
