"""`language`: the language the bot speaks to the caller, shown or chosen (SPEC §11)."""

from __future__ import annotations

from bot.app.context import Context, Handlers, UserError
from bot.app.handlers.conversation import greet
from bot.app.notices import language_of
from bot.commands import LanguageChoice
from bot.i18n import LANGUAGES, _, language_name, normalize, switch

handlers = Handlers()


def _choices() -> str:
    return ", ".join(f"`{code}` ({language_name(code)})" for code in LANGUAGES)


@handlers.on(LanguageChoice)
async def language(ctx: Context, cmd: LanguageChoice) -> None:
    if cmd.code is None:
        current = language_of(ctx.caller, ctx.settings)
        if ctx.caller.language:
            why = _("you chose it")
        elif ctx.caller.locale:
            why = _("your chat app's language")
        else:
            why = _("the community's language")
        ctx.reply(
            _(
                "I speak {language} to you ({why}). Languages: {choices}. "
                "Type `language <code>` to choose one, like `language nl`."
            ).format(language=language_name(current, current), why=why, choices=_choices()),
            topic="language",
        )
        return
    code = normalize(cmd.code)
    if code is None or len(cmd.code) > 5:
        raise UserError(
            _("I don't speak '{code}'. Languages: {choices}.").format(
                code=cmd.code[:20], choices=_choices()
            ),
            "language-unknown",
        )
    await ctx.uow.members.set_language(ctx.caller.id, language=code)
    switch(code)  # the confirmation is already in the new language
    first_contact = ctx.caller.last_active is None
    ctx.reply(
        _(
            "From now on I speak {language} to you. Commands keep their English names; "
            "type `help` for them."
        ).format(language=language_name(code, code)),
        topic="language-set",
    )
    if first_contact:
        # Someone whose very first words chose a language still gets the welcome.
        await greet(ctx, True)
