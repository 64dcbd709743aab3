"""The conversation's state machine: walks a person through a declarative flow, one question
at a time.

A flow (intake, profile) is data; the position in it is a JSON-serializable
:class:`State` that the core stores in a database row after every message. The
functions here take a state and a line of text and return the next :class:`Step`
(a new state and what to say): the control words (`back`, `skip`, `edit`, `status`,
`help`, `cancel`, `confirm`, and `stop` to pause), the questions in order and the
closing summary. They do no I/O, never raise on any input string, and never store an
answer that fails validation. Reading and checking one answer is
:mod:`conversations.answers`; what a step says is a tuple of styled spans
(:mod:`conversations.spans`) in which people's words are always plain text. What it
says, and the flow's own texts, are written in the reader's language at the moment they
are said (:mod:`conversations.i18n`); choices are stored as the flow's English words.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conversations import spans
from conversations.answers import (
    FUZZY_MAX,
    MAX_INPUT,
    TAG_PATTERN,
    Context,
    Kind,
    Parsed,
    Question,
    clean,
    format_answer,
    match_key,
    numbered,
    parse_answer,
    pick,
    quote,
    validate,
)
from conversations.i18n import N_, gettext
from conversations.spans import Span

# The control words, understood at every question (and `confirm` at the end); the core
# imports them to tell a conversation word from a command.
BACK, SKIP, EDIT, STATUS, HELP, CANCEL = "back", "skip", "edit", "status", "help", "cancel"
CONFIRM = "confirm"  # the word that submits, and the position after the last question
# What people type to get out of a chat: never an answer. The answers are kept and the
# conversation waits (paused) until its command (`intake`, `profile`) goes on; `cancel`
# is the word that throws the answers away.
PAUSE_WORDS = frozenset({"stop", "quit", "exit"})
CONTROL_WORDS = frozenset({BACK, SKIP, EDIT, STATUS, HELP, CANCEL, CONFIRM}) | PAUSE_WORDS
# All submit (with "ja" and "oui", as Dutch, German and French people say yes).
CONFIRM_WORDS = frozenset({CONFIRM, "yes", "y", "ok", "okay", "submit", "ja", "oui"})
CONFIRM_CHOICES = (CONFIRM, EDIT, CANCEL)  # the buttons of the confirm step
# The control words as people also type them in Dutch, French and German: understood
# like the English ones (which the bot's messages always show, in every language).
ALIASES = {
    "terug": BACK, "retour": BACK, "zurück": BACK,
    "overslaan": SKIP, "passer": SKIP, "überspringen": SKIP,
    "wijzig": EDIT, "wijzigen": EDIT, "modifier": EDIT, "ändern": EDIT,
    "statut": STATUS,
    "hulp": HELP, "aide": HELP, "hilfe": HELP,
    "annuleren": CANCEL, "annuler": CANCEL, "abbrechen": CANCEL,
    "bevestigen": CONFIRM, "confirmer": CONFIRM, "bestätigen": CONFIRM,
    "stopp": "stop",
}  # fmt: skip


@dataclass(frozen=True)
class Flow:
    """A whole conversation: its questions in order and what is said around them."""

    id: str
    title: str
    intro: str
    questions: tuple[Question, ...]
    done_prompt: str
    thanks: str = N_("Thank you!")
    goodbye: str = N_("Cancelled; nothing was saved.")

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    def index(self, question_id: str) -> int:
        """0-based position of a question, or -1."""
        for i, q in enumerate(self.questions):
            if q.id == question_id:
                return i
        return -1


@dataclass
class State:
    """Where a conversation is; stored by the core as JSON after every message."""

    flow: str
    answers: dict[str, Any]  # question id -> normalized answer (JSON types only)
    position: str | None  # question being asked, or CONFIRM
    trail: list[str]  # positions visited, a stack for `back`; trail[-1] == position
    editing: bool = False  # re-answering one question via `edit`: then back to where we were
    paused: bool = False  # `stop`: waiting until the person goes on (see PAUSE_WORDS)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "flow": self.flow,
            "answers": copy.deepcopy(self.answers),
            "position": self.position,
            "trail": list(self.trail),
            "editing": self.editing,
        }
        if self.paused:
            data["paused"] = True
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> State:
        """Rebuild a state from :meth:`to_dict` output; ValueError if it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("a conversation state must be a mapping")
        flow = data.get("flow")
        answers = data.get("answers", {})
        position = data.get("position")
        trail = data.get("trail", [])
        editing = data.get("editing", False)
        paused = data.get("paused", False)
        if not isinstance(flow, str):
            raise ValueError("conversation state: 'flow' must be a string")
        if not isinstance(answers, Mapping) or not all(isinstance(k, str) for k in answers):
            raise ValueError("conversation state: 'answers' must map question ids to answers")
        if position is not None and not isinstance(position, str):
            raise ValueError("conversation state: 'position' must be a string or null")
        if not isinstance(trail, list) or not all(isinstance(t, str) for t in trail):
            raise ValueError("conversation state: 'trail' must be a list of strings")
        if not isinstance(editing, bool):
            raise ValueError("conversation state: 'editing' must be true or false")
        if not isinstance(paused, bool):
            raise ValueError("conversation state: 'paused' must be true or false")
        return State(flow, copy.deepcopy(dict(answers)), position, list(trail), editing, paused)


class Outcome(StrEnum):
    ASKING = "asking"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    PAUSED = "paused"  # kept as it is, waiting (State.paused) until the person goes on


@dataclass(frozen=True)
class Step:
    """The engine's reply to one message: the new state and what to send, as styled spans
    (the engine's `code` and *strong* marks; what people typed is always a "text" span)."""

    state: State
    body: tuple[Span, ...]
    outcome: Outcome = Outcome.ASKING
    choices: tuple[str, ...] = ()  # buttons an adapter may show

    @property
    def say(self) -> str:
        """The body as one string with its marks written out (`code`, *strong*)."""
        return spans.plain(self.body)


# -- public entry points ---------------------------------------------------------------


def start(flow: Flow, context: Context, answers: dict[str, Any] | None = None) -> Step:
    """Begin a flow: the intro and the first question. Pre-filled answers that no longer
    validate (a community changed its choices, say) are dropped rather than kept."""
    kept: dict[str, Any] = {}
    for key, value in (answers or {}).items():
        q = flow.question(key)
        if q is not None and validate(q, value, context) is None:
            kept[key] = copy.deepcopy(value)
    if not flow.questions:
        state = State(flow.id, kept, CONFIRM, [CONFIRM])
        return _confirm_step(flow, state, lead=spans.marked(gettext(flow.intro)))
    first = flow.questions[0]
    state = State(flow.id, kept, first.id, [first.id])
    return _ask_step(flow, state, context, lead=spans.marked(gettext(flow.intro)))


def resume(flow: Flow, state: State, context: Context) -> Step:
    """Say the current question (or the summary and confirm prompt) again; the state is
    unchanged except that a paused conversation goes on."""
    st = _repaired(flow, state)
    st.paused = False
    # No greeting of its own: the core says why it is repeating the question.
    if st.position == CONFIRM:
        return _confirm_step(flow, st)
    return _ask_step(flow, st, context)


def answer(flow: Flow, state: State, text: str, context: Context) -> Step:
    """Handle one message. Never raises for any string; returns a new state. A paused
    conversation goes on with whatever it is given (the core decides what reaches it)."""
    st = _repaired(flow, state)
    if not isinstance(text, str):  # defensive: adapters should only ever pass text
        text = ""
    # Control words are looked for only in input of a sane size; the rest is refused by parsing.
    word = _control_word(clean(text)) if len(text) <= MAX_INPUT else ""
    if word == CANCEL:
        return Step(st, spans.marked(gettext(flow.goodbye)), Outcome.CANCELLED)
    if word in PAUSE_WORDS:
        st.paused = True
        return Step(st, _paused(flow, st), Outcome.PAUSED)
    st.paused = False
    if st.position == CONFIRM:
        return _at_confirm(flow, st, word, context)
    q = flow.question(st.position or "")
    assert q is not None  # _repaired guarantees a known position
    if word == BACK:
        return _back(flow, st, context)
    if word == SKIP:
        if not q.optional:
            lead = spans.spans(gettext("This question is required; please answer it."))
            return _ask_step(flow, st, context, lead=lead)
        st.answers.pop(q.id, None)
        return _advance(flow, st, context)
    if word == STATUS:
        return _ask_step(flow, st, context, lead=_status(flow, st))
    if word == HELP:
        return _ask_step(flow, st, context, lead=_help(flow, q))
    argument = _edit_argument(word)
    if argument is not None:
        target = _find_question(flow, argument)
        # A multi-word text answer that merely starts with "edit" ("Edit videos for NGOs")
        # is an answer, not a command.
        looks_like_answer = q.kind is Kind.TEXT and len(argument.split()) > 1
        if target is not None or not looks_like_answer:
            return _edit(flow, st, target, argument, context)
    parsed = parse_answer(q, text, context)
    if not parsed.ok:
        return _ask_step(flow, st, context, lead=parsed.reason)
    st.answers[q.id] = parsed.value
    return _advance(flow, st, context)


def summary_spans(flow: Flow, state: State) -> tuple[Span, ...]:
    """'label: answer' lines of all answered questions, in flow order, in the language being
    written in; the answers (and labels) are plain text, whatever characters they hold."""
    lines = []
    for q in flow.questions:
        if q.id in state.answers:
            shown = format_answer(q, state.answers[q.id]).replace("\n", "\n    ")
            line = gettext("{label}: {shown}")
            lines.append(spans.spans(line, label=gettext(q.label), shown=shown))
    return spans.join("\n", lines)


def summary(flow: Flow, state: State) -> str:
    """:func:`summary_spans` as one string."""
    return spans.plain(summary_spans(flow, state))


# -- moving through the flow -----------------------------------------------------------


def _control_word(cleaned: str) -> str:
    """The input as a possible control word: folded, single-spaced, trailing '.!?' dropped,
    and a translated control word (`terug`, `annuler`) as the English one."""
    if len(cleaned) > FUZZY_MAX + 10:
        return ""
    word = " ".join(cleaned.casefold().split()).rstrip(".!?").strip()
    head, space, rest = word.partition(" ")
    english = ALIASES.get(head)
    if english is None or (space and english != EDIT):
        return word
    return f"{english}{space}{rest}"


def _edit_argument(word: str) -> str | None:
    """What follows `edit` ('' for `edit` alone), or None when the word is not an edit."""
    head, _, argument = word.partition(" ")
    return argument if head == EDIT else None


def _repaired(flow: Flow, state: State) -> State:
    """A copy of the state that is consistent with the flow, whatever was stored: a known
    position, at the top of the trail. For a well-formed state this equals the input."""
    ids = {q.id for q in flow.questions}
    answers = copy.deepcopy(state.answers) if isinstance(state.answers, dict) else {}
    trail = [t for t in state.trail if t in ids or t == CONFIRM][-500:]
    position = state.position
    if position != CONFIRM and position not in ids:
        missing = [q.id for q in flow.questions if q.id not in answers]
        position = missing[0] if missing else CONFIRM
    if not trail or trail[-1] != position:
        trail.append(position)
    editing = bool(state.editing) and position != CONFIRM
    return State(flow.id, answers, position, trail, editing, bool(state.paused))


def _choices_for(question: Question) -> tuple[str, ...]:
    if question.kind in (Kind.CHOICE, Kind.MULTI):
        return question.choices
    if question.kind is Kind.YESNO:
        return ("yes", "no")
    return ()


def _prompt(flow: Flow, state: State, question: Question, context: Context) -> tuple[Span, ...]:
    """The question as asked: number, prompt, the options, the current answer if any."""
    number = spans.spans("({n}/{total}) ", n=flow.index(question.id) + 1, total=len(flow.questions))
    lines = [spans.merge(number + spans.marked(gettext(question.prompt)))]
    if question.kind is Kind.CHOICE:
        choose = gettext("Choose one: {choices}")
        lines.append(spans.spans(choose, choices=numbered(question.choices)))
    elif question.kind is Kind.MULTI:
        choose = gettext("Choose one or more: {choices}")
        lines.append(spans.spans(choose, choices=numbered(question.choices)))
    elif question.kind in (Kind.TAGS, Kind.TAG_LEVELS) and context.tags:
        lines.append(spans.spans(gettext("Tags: {tags}"), tags=", ".join(context.tags)))
    elif question.kind is Kind.YESNO:
        lines.append(spans.spans(gettext("(yes or no)")))
    if question.id in state.answers:
        now = " ".join(format_answer(question, state.answers[question.id]).split())
        shown = now[:300] + "…" if len(now) > 300 else now
        lines.append(spans.spans(gettext("(now: {now})"), now=shown))
    if question.optional:
        lines.append(spans.spans(gettext("Optional — type `skip` to leave it out.")))
    return spans.join("\n", lines)


def _ask_step(flow: Flow, state: State, context: Context, lead: tuple[Span, ...] = ()) -> Step:
    question = flow.question(state.position or "")
    assert question is not None
    text = _prompt(flow, state, question, context)
    body = spans.join("\n\n", [lead, text]) if lead else text
    return Step(state, body, choices=_choices_for(question))


def _confirm_step(flow: Flow, state: State, lead: tuple[Span, ...] = ()) -> Step:
    listed = summary_spans(flow, state) or spans.spans(gettext("(no answers)"))
    told = spans.join("\n", [spans.spans(gettext("Here is what you told me:")), listed])
    return _done_prompt(flow, state, spans.join("\n\n", [lead, told]) if lead else told)


def _done_prompt(flow: Flow, state: State, lead: tuple[Span, ...]) -> Step:
    """The lead, then what to type at the confirm step."""
    body = spans.join("\n\n", [lead, spans.marked(gettext(flow.done_prompt))])
    return Step(state, body, choices=CONFIRM_CHOICES)


def _go_to_confirm(flow: Flow, state: State, context: Context, lead: tuple[Span, ...] = ()) -> Step:
    """Move to the confirm step, unless a required answer is missing or no longer valid
    (a community can change choices mid-conversation): then ask that question first."""
    if not state.trail or state.trail[-1] != CONFIRM:
        state.trail.append(CONFIRM)
    state.position, state.editing = CONFIRM, False
    for q in flow.questions:
        value = state.answers.get(q.id)
        if q.id in state.answers and validate(q, value, context) is not None:
            del state.answers[q.id]
        if q.id not in state.answers and not q.optional:
            state.position, state.editing = q.id, True
            state.trail.append(q.id)
            need = spans.spans(
                gettext("I still need an answer about {label}."), label=gettext(q.label)
            )
            return _ask_step(flow, state, context, lead=need)
    return _confirm_step(flow, state, lead)


def _advance(flow: Flow, state: State, context: Context) -> Step:
    """After an answer (or a skip): in editing mode back to where the edit started,
    otherwise on to the next question in flow order, or to the confirm step."""
    if state.editing:
        state.trail.pop()
        state.editing = False
        back_to = state.trail[-1] if state.trail else CONFIRM
        if back_to == CONFIRM or flow.question(back_to) is None:
            return _go_to_confirm(flow, state, context)
        state.position = back_to
        return _ask_step(
            flow, state, context, lead=spans.spans(gettext("Saved. Back to where we were:"))
        )
    index = flow.index(state.position or "")
    if index + 1 >= len(flow.questions):
        return _go_to_confirm(flow, state, context)
    nxt = flow.questions[index + 1].id
    state.position = nxt
    state.trail.append(nxt)
    return _ask_step(flow, state, context)


def _back(flow: Flow, state: State, context: Context) -> Step:
    if state.editing:
        state.trail.pop()
        state.editing = False
        state.position = state.trail[-1] if state.trail else CONFIRM
        kept = spans.spans(gettext("Kept your earlier answer."))
        if state.position == CONFIRM or flow.question(state.position) is None:
            return _go_to_confirm(flow, state, context, lead=kept)
        return _ask_step(flow, state, context, lead=kept)
    if len(state.trail) >= 2 and flow.question(state.trail[-2]) is not None:
        state.trail.pop()
        state.position = state.trail[-1]
        return _ask_step(flow, state, context)
    index = flow.index(state.position or "")
    if index <= 0:
        lead = spans.spans(gettext("There is no question before this one."))
        return _ask_step(flow, state, context, lead=lead)
    # The trail was lost (an old state): fall back to flow order.
    state.position = flow.questions[index - 1].id
    state.trail = [state.position]
    return _ask_step(flow, state, context)


def _find_question(flow: Flow, argument: str) -> Question | None:
    """The question `edit <argument>` means: id, 1-based number, label (English or
    translated), prefix or close spelling."""
    by_name: dict[str, Question] = {}
    for q in flow.questions:
        by_name.setdefault(q.label.casefold(), q)
    for q in flow.questions:
        by_name.setdefault(gettext(q.label).casefold(), q)
    for q in flow.questions:
        by_name[q.id.casefold()] = q  # ids win over labels
    arg = argument.strip().lstrip("#").casefold()
    return pick(arg, flow.questions, by_name, fold=lambda folded: folded, cutoff=0.7)


def _edit(
    flow: Flow, state: State, target: Question | None, argument: str, context: Context
) -> Step:
    if target is None:
        named = argument.strip()
        ids = ", ".join(q.id for q in flow.questions)
        if named:
            none = gettext(
                "There is no question {named}; type `edit` with one of: {ids} (or its number)."
            )
            lead = spans.spans(none, named=quote(named), ids=ids)
        else:
            which = gettext("Which one; type `edit` with one of: {ids} (or its number).")
            lead = spans.spans(which, ids=ids)
        if state.position == CONFIRM:
            return _done_prompt(flow, state, lead)
        return _ask_step(flow, state, context, lead=lead)
    if target.id == state.position:
        lead = spans.spans(gettext("That is the question we are on:"))
        return _ask_step(flow, state, context, lead=lead)
    if state.editing and len(state.trail) >= 2 and state.trail[-2] == target.id:
        # Editing back to where the edit started is just going back there.
        return _back(flow, state, context)
    if state.editing:
        state.trail[-1] = target.id  # switch which question is being edited
    else:
        state.trail.append(target.id)
    state.position, state.editing = target.id, True
    return _ask_step(flow, state, context)


def _status_head(flow: Flow, state: State) -> tuple[Span, ...]:
    if state.position == CONFIRM:
        return spans.spans(
            gettext("All {total} questions are done; waiting for your confirmation."),
            total=len(flow.questions),
        )
    return spans.spans(
        gettext("Question {n} of {total}: {id}."),
        n=flow.index(state.position or "") + 1,
        total=len(flow.questions),
        id=state.position,
    )


def _status(flow: Flow, state: State) -> tuple[Span, ...]:
    so_far = summary_spans(flow, state)
    answers = (
        spans.join("\n", [spans.spans(gettext("Your answers so far:")), so_far])
        if so_far
        else spans.spans(gettext("No answers yet."))
    )
    return spans.join("\n", [_status_head(flow, state), answers])


# A question's help when its flow gives none (constants: translated where shown).
_KIND_HELP = {
    Kind.TEXT: N_("Answer in your own words."),
    Kind.CHOICE: N_("Type one of the choices, or its number."),
    Kind.MULTI: N_("Type one or more of the choices, or their numbers, separated by commas."),
    Kind.AMOUNT: N_("Give an amount or a range, like 5000 EUR, 10-20k euro or don't know."),
    Kind.NUMBER: N_("Type a number."),
    Kind.TAGS: N_("Type one or more tags, separated by commas or spaces."),
    Kind.TAG_LEVELS: N_("Type one or more tags, each with a level 1-3 like finance:3."),
    Kind.YESNO: N_("Answer yes or no."),
}


# What is an answer and what is not: the rule the core follows (bot.app.service.is_answer).
ANSWER_RULE = N_(
    "Anything else you type is your answer, except a command such as `balance` or "
    "`help <command>`, which runs in between; start a line with `/` to be sure it is read as "
    "a command (like `/find partners`)."
)


def _help(flow: Flow, question: Question) -> tuple[Span, ...]:
    own = (
        spans.marked(gettext(question.help))
        if question.help
        else spans.spans(gettext(_KIND_HELP[question.kind]))
    )
    if question.optional:
        template = gettext(
            "You can also type `back` (previous question), `skip` (this one is optional), "
            "`edit <question>` (change an earlier answer), `status` (how far we are), `stop` "
            "(pause; `{command}` goes on later) or `cancel` (throw these answers away)."
        )
    else:
        template = gettext(
            "You can also type `back` (previous question), `edit <question>` (change an "
            "earlier answer), `status` (how far we are), `stop` (pause; `{command}` goes on "
            "later) or `cancel` (throw these answers away)."
        )
    words = spans.spans(template, command=flow.id)
    return spans.join("\n", [own, words, spans.marked(gettext(ANSWER_RULE))])


def _paused(flow: Flow, state: State) -> tuple[Span, ...]:
    if not state.answers:
        return spans.spans(
            gettext("Paused. Type `{command}` to go on when you like, or `cancel` to stop it."),
            command=flow.id,
        )
    return spans.spans(
        gettext(
            "Paused; your answers so far are kept. Type `{command}` to go on where you "
            "stopped, or `cancel` to throw them away."
        ),
        command=flow.id,
    )


def _at_confirm(flow: Flow, state: State, word: str, context: Context) -> Step:
    if word in CONFIRM_WORDS:
        step = _go_to_confirm(flow, state, context)
        if state.position != CONFIRM:
            return step  # an answer went missing; it is being asked now
        return Step(state, spans.marked(gettext(flow.thanks)), Outcome.CONFIRMED)
    argument = _edit_argument(word)
    if argument is not None:
        return _edit(flow, state, _find_question(flow, argument), argument, context)
    if word == BACK:
        state.trail.pop()
        last = state.trail[-1] if state.trail else ""
        if flow.question(last) is None:
            if not flow.questions:
                return _go_to_confirm(flow, state, context)
            last = flow.questions[-1].id
            state.trail.append(last)
        state.position = last
        return _ask_step(flow, state, context)
    if word == STATUS:
        return _confirm_step(flow, state, lead=_status_head(flow, state))
    if word == HELP:
        lead = spans.spans(
            gettext(
                "`confirm` submits your answers, `edit <question>` (a name or number, like "
                "`edit 6`) changes one, `back` returns to the last question, `stop` pauses "
                "(`{command}` goes on later) and `cancel` stops without saving."
            ),
            command=flow.id,
        )
        rule = spans.marked(gettext(ANSWER_RULE))
        return _done_prompt(flow, state, spans.join("\n", [lead, rule]))
    lead = spans.spans(gettext("Everything is answered; I only need your confirmation now."))
    return _done_prompt(flow, state, lead)


__all__ = [
    "CONFIRM",
    "CONFIRM_WORDS",
    "CONTROL_WORDS",
    "PAUSE_WORDS",
    "TAG_PATTERN",
    "Context",
    "Flow",
    "Kind",
    "Outcome",
    "Parsed",
    "Question",
    "State",
    "Step",
    "answer",
    "clean",
    "format_answer",
    "match_key",
    "parse_answer",
    "resume",
    "start",
    "summary",
    "summary_spans",
    "validate",
]
