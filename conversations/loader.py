"""Load the packaged flow definitions (YAML) and a community's override file into Flow objects.

Everything a flow says is checked here, once, at start-up, so the engine can trust
it: a mistake in a flow or an override file stops the bot with one line naming the
file, the flow, the question and what is wrong.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from conversations.answers import Kind, Question, clean, match_key
from conversations.engine import CONFIRM, Flow

FLOW_FIELDS = ("id", "title", "intro", "done_prompt", "thanks", "goodbye", "questions")
QUESTION_FIELDS = (
    "id", "prompt", "help", "kind", "optional", "min_len", "max_len", "choices", "allow_note",
    "minimum", "maximum", "summary_label", "integer",
)  # fmt: skip
# What a community may change. Ids and kinds are fixed because the core reads answers by id
# and expects each answer's shape; allow_note and integer change the shape too.
OVERRIDABLE_FLOW_FIELDS = ("title", "intro", "done_prompt", "thanks", "goodbye", "questions")
OVERRIDABLE_QUESTION_FIELDS = (
    "prompt", "help", "optional", "min_len", "max_len", "choices", "minimum", "maximum",
    "summary_label",
)  # fmt: skip
# Answers the core cannot do without: they may never be made optional.
REQUIRED_BY_CORE: dict[str, tuple[str, ...]] = {
    "intake": ("title", "help", "language"),
    "profile": ("expertise", "languages", "capacity"),
}
ID_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_TEXT_LEN = 10_000  # keeps every answer small enough to store and to show in a chat
MAX_CHOICES = 50
MAX_CHOICE_LEN = 60


class FlowError(ValueError):
    """A flow definition or override file is wrong; the message is one line."""


def _fail(
    source: str, what: str, flow: str | None = None, question: str | None = None
) -> FlowError:
    where = source
    if flow is not None:
        where += f": flow '{flow}'"
    if question is not None:
        where += f", question '{question}'"
    return FlowError(" ".join(f"{where}: {what}".split()))  # always one line


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"


def _parse_yaml(source: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(source, f"not valid YAML: {exc}") from None


def _packaged() -> dict[str, tuple[str, dict[str, Any]]]:
    """flow id -> (source name, raw mapping) for every YAML file shipped in conversations/flows."""
    flows: dict[str, tuple[str, dict[str, Any]]] = {}
    folder = resources.files("conversations.flows")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        source = f"conversations/flows/{entry.name}"
        data = _parse_yaml(source, entry.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise _fail(source, "a flow file must be a mapping with id, title, intro, questions")
        flow_id = data.get("id")
        if flow_id != entry.name.removesuffix(".yaml"):
            raise _fail(source, f"the flow id {flow_id!r} must match the file name")
        flows[flow_id] = (source, data)
    return flows


def load_flows(override_path: str | Path | None = None) -> dict[str, Flow]:
    """The packaged flows, with a community's override file applied when given."""
    raw = _packaged()
    sources = {flow_id: {"": source} for flow_id, (source, _) in raw.items()}
    data = {flow_id: copy.deepcopy(mapping) for flow_id, (_, mapping) in raw.items()}
    if override_path is not None:
        _apply_override(Path(override_path), data, sources)
    return {flow_id: _build_flow(sources[flow_id], mapping) for flow_id, mapping in data.items()}


# -- overrides -------------------------------------------------------------------------


def _apply_override(
    path: Path, data: dict[str, dict[str, Any]], sources: dict[str, dict[str, str]]
) -> None:
    """Merge a community override file into the raw flow mappings, in place. `sources`
    remembers which file each flow field and question came from, for error messages."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(source, f"cannot read the override file: {exc}") from None
    override = _parse_yaml(source, text)
    if override is None:
        return  # an empty file changes nothing
    if not isinstance(override, dict):
        raise _fail(source, "an override file must map flow ids (intake, profile) to changes")
    for flow_id, changes in override.items():
        if flow_id not in data:
            raise _fail(source, f"unknown flow {flow_id!r}{_suggest(str(flow_id), list(data))}")
        if changes is None:
            continue  # `intake:` with nothing under it changes nothing
        if not isinstance(changes, dict):
            raise _fail(source, "the changes must be a mapping of fields", flow_id)
        for key, value in changes.items():
            if key not in OVERRIDABLE_FLOW_FIELDS:
                allowed = ", ".join(OVERRIDABLE_FLOW_FIELDS)
                raise _fail(source, f"'{key}' cannot be overridden (allowed: {allowed})", flow_id)
            if key == "questions":
                _override_questions(source, flow_id, value, data[flow_id], sources[flow_id])
            else:
                data[flow_id][key] = value
                sources[flow_id][""] = source


def _override_questions(
    source: str, flow_id: str, changes: Any, flow: dict[str, Any], sources: dict[str, str]
) -> None:
    if changes is None:
        return
    if not isinstance(changes, dict):
        raise _fail(source, "'questions' must map question ids to changes", flow_id)
    questions = flow.get("questions")
    by_id = {
        q.get("id"): q
        for q in (questions if isinstance(questions, list) else [])
        if isinstance(q, dict)
    }
    for question_id, fields in changes.items():
        known = [str(k) for k in by_id]
        if question_id not in by_id:
            hint = _suggest(str(question_id), known)
            raise _fail(source, f"no such question{hint}", flow_id, str(question_id))
        if not isinstance(fields, dict):
            raise _fail(source, "the changes must be a mapping of fields", flow_id, question_id)
        for key, value in fields.items():
            if key not in OVERRIDABLE_QUESTION_FIELDS:
                allowed = ", ".join(OVERRIDABLE_QUESTION_FIELDS)
                what = (
                    f"cannot change '{key}'" if key in QUESTION_FIELDS else f"unknown field '{key}'"
                )
                raise _fail(
                    source, f"{what} (a community may change: {allowed})", flow_id, question_id
                )
            by_id[question_id][key] = value
        sources[question_id] = source


# -- building and checking -------------------------------------------------------------


def build_flow(data: dict[str, Any], source: str = "<flow>") -> Flow:
    """Check one raw flow mapping (as read from YAML) and build it; FlowError if wrong."""
    if not isinstance(data, dict):
        raise _fail(source, "a flow must be a mapping with id, title, intro, questions")
    return _build_flow({"": source}, data)


def _build_flow(sources: dict[str, str], data: dict[str, Any]) -> Flow:
    source = sources[""]
    flow_id = data.get("id")
    if not isinstance(flow_id, str) or not ID_PATTERN.fullmatch(flow_id):
        raise _fail(source, f"the flow id {flow_id!r} must be a short lowercase name")
    for key in data:
        if key not in FLOW_FIELDS:
            raise _fail(
                source, f"unknown field '{key}'{_suggest(str(key), list(FLOW_FIELDS))}", flow_id
            )
    texts: dict[str, str] = {}
    for key in ("title", "intro", "done_prompt", "thanks", "goodbye"):
        value = data.get(key)
        if value is None and key in ("thanks", "goodbye"):
            continue  # the engine has a plain default
        if not isinstance(value, str) or not value.strip():
            raise _fail(source, f"'{key}' must be a non-empty text", flow_id)
        texts[key] = value.strip()
    questions = data.get("questions")
    if not isinstance(questions, list) or not questions:
        raise _fail(source, "'questions' must be a non-empty list", flow_id)
    built: list[Question] = []
    for number, raw in enumerate(questions, 1):
        qid = raw.get("id") if isinstance(raw, dict) else None
        label = qid if isinstance(qid, str) else f"#{number}"
        q_source = sources.get(label, source)
        if not isinstance(raw, dict):
            raise _fail(
                q_source, "a question must be a mapping with id, kind and prompt", flow_id, label
            )
        question = _build_question(q_source, flow_id, label, raw)
        if any(q.id == question.id for q in built):
            raise _fail(q_source, "the id is used twice", flow_id, label)
        built.append(question)
    for required in REQUIRED_BY_CORE.get(flow_id, ()):
        match = [q for q in built if q.id == required]
        if not match:
            raise _fail(source, "the core needs this question; it is missing", flow_id, required)
        if match[0].optional:
            q_source = sources.get(required, source)
            raise _fail(
                q_source, "the core needs this answer; it cannot be optional", flow_id, required
            )
    return Flow(
        id=flow_id,
        title=texts["title"],
        intro=texts["intro"],
        questions=tuple(built),
        done_prompt=texts["done_prompt"],
        **{key: texts[key] for key in ("thanks", "goodbye") if key in texts},
    )


def _build_question(source: str, flow_id: str, label: str, raw: dict[str, Any]) -> Question:
    def fail(what: str) -> FlowError:
        return _fail(source, what, flow_id, label)

    for key in raw:
        if key not in QUESTION_FIELDS:
            raise fail(f"unknown field '{key}'{_suggest(str(key), list(QUESTION_FIELDS))}")
    qid = raw.get("id")
    if not isinstance(qid, str) or not ID_PATTERN.fullmatch(qid) or qid == CONFIRM:
        raise fail("the id must be a short lowercase name (letters, digits, _), not 'confirm'")
    kind_name = raw.get("kind", Kind.TEXT.value)
    if kind_name not in {k.value for k in Kind}:
        raise fail(f"unknown kind {kind_name!r} (kinds: {', '.join(k.value for k in Kind)})")
    kind = Kind(kind_name)
    for key in ("prompt", "help", "summary_label"):
        value = raw.get(key, "")
        if not isinstance(value, str) or (key == "prompt" and not value.strip()):
            raise fail(f"'{key}' must be {'a non-empty ' if key == 'prompt' else 'a '}text")
    for key in ("optional", "allow_note", "integer"):
        if not isinstance(raw.get(key, False), bool):
            raise fail(f"'{key}' must be true or false")
    applies = {
        "min_len": (Kind.TEXT,),
        "max_len": (Kind.TEXT, Kind.CHOICE, Kind.MULTI),
        "choices": (Kind.CHOICE, Kind.MULTI),
        "allow_note": (Kind.CHOICE, Kind.MULTI),
        "minimum": (Kind.NUMBER,),
        "maximum": (Kind.NUMBER,),
        "integer": (Kind.NUMBER,),
    }
    for key, kinds in applies.items():
        if key in raw and kind not in kinds:
            raise fail(f"'{key}' does not apply to a {kind.value} question")
    min_len, max_len = raw.get("min_len", 1), raw.get("max_len", 1000)
    for key, value in (("min_len", min_len), ("max_len", max_len)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TEXT_LEN:
            raise fail(f"'{key}' must be a whole number from 1 to {MAX_TEXT_LEN}")
    if min_len > max_len:
        raise fail(f"min_len ({min_len}) is more than max_len ({max_len})")
    allow_note = bool(raw.get("allow_note", False))
    choices = _check_choices(fail, kind, raw.get("choices"), allow_note)
    minimum, maximum = raw.get("minimum"), raw.get("maximum")
    for key, bound in (("minimum", minimum), ("maximum", maximum)):
        if bound is not None and (
            not isinstance(bound, int | float)
            or isinstance(bound, bool)
            or not math.isfinite(bound)
        ):
            raise fail(f"'{key}' must be a number")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise fail(f"minimum ({minimum}) is more than maximum ({maximum})")
    return Question(
        id=qid,
        prompt=raw["prompt"].strip(),
        help=raw.get("help", "").strip(),
        kind=kind,
        optional=bool(raw.get("optional", False)),
        min_len=min_len,
        max_len=max_len,
        choices=choices,
        allow_note=allow_note,
        minimum=minimum,
        maximum=maximum,
        summary_label=raw.get("summary_label", "").strip(),
        integer=bool(raw.get("integer", False)),
    )


def _check_choices(
    fail: Callable[[str], FlowError], kind: Kind, choices: Any, allow_note: bool
) -> tuple[str, ...]:
    if kind not in (Kind.CHOICE, Kind.MULTI):
        return ()
    least = 2 if kind is Kind.CHOICE else 1
    if not isinstance(choices, list) or len(choices) < least:
        raise fail(f"a {kind.value} question needs a list of at least {least} choices")
    if len(choices) > MAX_CHOICES:
        raise fail(f"at most {MAX_CHOICES} choices")
    seen: dict[str, str] = {}
    for choice in choices:
        if not isinstance(choice, str) or not choice.strip() or clean(choice) != choice:
            raise fail(f"the choice {choice!r} must be a plain, non-empty text")
        if len(choice) > MAX_CHOICE_LEN:
            raise fail(f"the choice '{choice[:20]}…' is longer than {MAX_CHOICE_LEN} characters")
        if choice.isdigit():
            raise fail(f"the choice '{choice}' is a number, which would clash with choice numbers")
        # Answers are matched loosely (case and punctuation ignored), so these must differ.
        key = match_key(choice)
        if not key or key in seen:
            raise fail(f"the choice '{choice}' cannot be told apart from '{seen.get(key, '')}'")
        seen[key] = choice
        if allow_note and re.search(r"\s-\s|[:–—]" + ("|," if kind is Kind.CHOICE else ""), choice):
            raise fail(f"the choice '{choice}' contains a separator used for notes")
    return tuple(choices)


__all__ = ["REQUIRED_BY_CORE", "FlowError", "build_flow", "load_flows"]
