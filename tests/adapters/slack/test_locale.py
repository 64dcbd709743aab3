"""The Slack door tells the core each person's Slack locale (users.info, include_locale),
asked once per person and process; a failed lookup never holds an event up."""

from __future__ import annotations

from typing import Any

from bot.i18n import translations
from bot.messages import Inbound
from tests.adapters.slack.fake_slack import block_actions_body, post_signed
from tests.adapters.slack.test_slack_app import FORM, SECRET, Env, env  # noqa: F401


def _recorded(door: Env) -> list[Inbound]:
    """Every Inbound the adapter hands the core, from now on."""
    seen: list[Inbound] = []
    handle = door.bot.handle

    async def recording(inbound: Inbound, *args: Any, **kwargs: Any) -> Any:
        seen.append(inbound)
        return await handle(inbound, *args, **kwargs)

    door.adapter.bot.handle = recording  # type: ignore[method-assign]
    return seen


async def test_the_slack_locale_comes_with_every_event_and_is_asked_once(env: Env) -> None:  # noqa: F811
    env.slack.users["U0002"]["locale"] = "nl-BE"
    seen = _recorded(env)
    assert await env.command("balance") == 200
    await env.slack.wait_for("chat.postEphemeral")
    assert await env.command("balance") == 200
    assert [inbound.locale for inbound in seen] == ["nl-BE", "nl-BE"]
    (asked,) = env.slack.calls_to("users.info")
    assert asked.args["user"] == "U0002"
    assert str(asked.args["include_locale"]).lower() in ("1", "true")
    async with env.bot.uow_factory.reading() as uow:
        ann = await uow.members.by_identity("slack", "T0001:U0002")
    assert ann is not None and ann.locale == "nl"


async def test_a_click_carries_the_locale_too(env: Env) -> None:  # noqa: F811
    env.slack.users["U0003"]["locale"] = "fr-FR"
    seen = _recorded(env)
    body = block_actions_body(user_id="U0003", value="balance")
    status, _ = await post_signed(env.url, body, SECRET, content_type=FORM)
    assert status == 200
    assert [inbound.locale for inbound in seen] == ["fr-FR"]


async def test_without_a_locale_the_event_goes_on(env: Env) -> None:  # noqa: F811
    env.slack.users["U0002"]["locale"] = None  # Slack does not say
    env.slack.fail_next("users.info", status=200, error="user_not_found", after=1)
    seen = _recorded(env)
    assert await env.command("balance") == 200
    assert await env.command("balance", user_id="U0003", user_name="bob") == 200
    await env.slack.wait_for("chat.postEphemeral", count=2)
    assert [inbound.locale for inbound in seen] == [None, None]
    assert [inbound.display_name for inbound in seen] == ["ann", "bob"]


async def test_a_person_whose_slack_speaks_french_is_answered_in_french(env: Env) -> None:  # noqa: F811
    env.slack.users["U0002"]["locale"] = "fr-FR"
    assert await env.command("balance") == 200
    (french,) = await env.slack.wait_for("chat.postEphemeral")
    env.slack.users["U0003"]["locale"] = "en-US"
    assert await env.command("balance", user_id="U0003", user_name="bob") == 200
    _, english = await env.slack.wait_for("chat.postEphemeral", count=2)
    assert english.args["text"].startswith("Your balance: 0.00 SIF")
    text = french.args["text"]
    assert not text.startswith("Your balance") and "0,00 SIF" in text
    french_balance = translations("fr").gettext(
        "Your balance: {balance}\n"
        "Held for open requests: {held}\n"
        "Credit limit: {limit} (can spend {room} more)\n"
        "Lifetime: given {given} in reviews, received {received}"
    )
    assert text.startswith(french_balance.split("{")[0]), text
    # chosen without choosing: nothing was typed but `balance`
    async with env.bot.uow_factory.reading() as uow:
        ann = await uow.members.by_identity("slack", "T0001:U0002")
    assert ann is not None and ann.language is None and ann.locale == "fr"
