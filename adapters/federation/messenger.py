"""Posting federation messages to partner nodes over HTTP (aiohttp).

The core signs (``seal`` gives the partner's inbox URL and the signed bytes, stamped at
this attempt); this messenger only carries them. Anything but a 2xx answer raises, so
the outbox keeps the message and tries again later: a partner that is down or refusing
delays the exchange, and the message's unchanged id makes the retry a no-op there if the
first attempt did arrive.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from bot.messages import Outbound

PLATFORM = "federation"
TIMEOUT_SECONDS = 20


class PartnerUnavailable(ConnectionError):
    """The partner did not take the message (down, or answered with an error)."""


class FederationMessenger:
    platform = PLATFORM

    def __init__(
        self,
        seal: Callable[[Outbound], tuple[str, bytes]],
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._seal = seal
        self._session = session

    async def send(self, message: Outbound) -> None:
        url, data = self._seal(message)
        session = self._session
        own = session is None
        if session is None:
            session = aiohttp.ClientSession()
        try:
            async with session.post(
                url,
                data=data,
                headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            ) as response:
                if response.status // 100 != 2:
                    detail = (await response.text())[:200]
                    raise PartnerUnavailable(f"{url} answered {response.status}: {detail}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PartnerUnavailable(f"{url} is unreachable: {exc}") from exc
        finally:
            if own:
                await session.close()
