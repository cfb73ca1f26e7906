"""Parse the text after ``/dumptask`` into a typed command.

Everything here is pure: :func:`parse_command` turns the ``text`` field of a slash command into
one of the :data:`Command` values, or raises :class:`~bot.errors.CommandError` whose message
(Slack mrkdwn, ready to post) says what was wrong and what to type instead.

The input is forgiving because on-call engineers type it on phones under stress: sub-commands
are case-insensitive, tasks may be separated by spaces or commas, curly quotes and an em dash
in place of ``--`` (what phones make of ``"`` and ``--``) work like their plain forms, and an
apostrophe inside a word (``can't``) is not mistaken for an opening quote.

Parsing takes time linear in the text, and a text longer than any valid command could be is
refused before it is even split, so no command can keep the bot busy.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from bot.errors import CommandError
from bot.text import escape_mrkdwn, unescape_mrkdwn
from bot.vocabulary import TaskAction as Action

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_TASKS: Final = 5
"""A DIS stream holds at most 5 dump tasks, so one request never needs more."""
MAX_NAME_LENGTH: Final = 64
MAX_REASON_LENGTH: Final = 500
MAX_COMMAND_LENGTH: Final = 4000
"""Longer than any valid command, even with a whole reason of characters Slack escapes."""

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""The shape shared by stream names, task names and task ids."""

SUBCOMMANDS: Final = ("help", "start", "stop", "list", "status")

EXAMPLE: Final = (
    '/dumptask start orders-stream orders-to-obs 9dSu1wfCytSk1aOLxvF --reason "INC-4312 OBS dump '
    'stalled"'
)

_SYNTAX: Final = {
    "help": "/dumptask help",
    "start": '/dumptask start <stream> <task> [<task>...] [--at 14:30] [--reason "..."]',
    "stop": ('/dumptask stop <stream> <task> [<task>...] [--for 2h] [--at 14:30] [--reason "..."]'),
    "list": "/dumptask list <stream>",
    "status": "/dumptask status [<request-id>]",
}

_SUMMARY: Final = {
    "start": "ask to start dump tasks",
    "stop": "ask to pause dump tasks",
    "list": "a stream's dump tasks with their ids and states",
    "status": "one request's history, or your recent requests",
    "help": "this message",
}

# Words people reach for that are not sub-commands but clearly mean one.
_ALIASES: Final = {"pause": "stop", "resume": "start", "unpause": "start", "ls": "list"}

_REASON_FLAGS: Final = ("--reason", "-r")
_FOR_FLAG: Final = "--for"
_AT_FLAG: Final = "--at"
_OPTIONS_HELP: Final = (
    '`--reason "..."` (or `-r "..."`), `--for 2h` (stop only: resume by itself after that) and '
    "`--at 14:30` (run at that time, after approval)"
)
_DURATION = re.compile(r"(?:(?P<h>\d{1,3})h)?(?:(?P<m>\d{1,4})m(?:in)?)?(?:(?P<s>\d{1,5})s)?")
_TIME_OF_DAY = re.compile(r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)")

# Phones turn " into curly double quotes (or low-high ones on German keyboards) and ' into curly
# single quotes; each works like its straight form.
_QUOTES: Final = str.maketrans(
    dict.fromkeys(
        "\N{LEFT DOUBLE QUOTATION MARK}\N{RIGHT DOUBLE QUOTATION MARK}"
        "\N{DOUBLE LOW-9 QUOTATION MARK}\N{DOUBLE HIGH-REVERSED-9 QUOTATION MARK}",
        '"',
    )
    | dict.fromkeys(
        "\N{LEFT SINGLE QUOTATION MARK}\N{RIGHT SINGLE QUOTATION MARK}"
        "\N{SINGLE LOW-9 QUOTATION MARK}\N{SINGLE HIGH-REVERSED-9 QUOTATION MARK}",
        "'",
    )
)
# An apostrophe between two letters (can't, or its curly form) is part of a word, never a quote.
_APOSTROPHE = re.compile(r"(?<=\w)['\N{RIGHT SINGLE QUOTATION MARK}](?=\w)")
# A private-use character stands in for such an apostrophe while shlex reads the text.
_APOSTROPHE_STANDIN: Final = "\ue000"
# Phones turn -- into an em dash (iOS) or an en dash.
_DASHES: Final = ("\N{EM DASH}", "\N{EN DASH}")
# One piece of a POSIX shell word: blanks between words, unquoted text, or a quoted string
# (the quotes dropped, nothing escaped inside). A quote that is never closed matches nothing.
_PIECE = re.compile(
    r"""(?P<blank>[ \t\r\n]+)|(?P<bare>[^ \t\r\n"']+)|"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'"""
)
_ECHO_LIMIT: Final = 40


@dataclass(frozen=True, slots=True)
class HelpCommand:
    """``/dumptask`` or ``/dumptask help``: show the usage."""


@dataclass(frozen=True, slots=True)
class TimeOfDay:
    """``--at 14:30``: a time on the requester's clock, resolved to the next such moment."""

    hour: int
    minute: int


@dataclass(frozen=True, slots=True)
class TaskCommand:
    """``/dumptask start|stop <stream> <task>...``: ask for approval to start or pause tasks."""

    action: Action
    stream: str
    tasks: tuple[str, ...]
    """Task names or ids as typed, distinct, in the order first given; 1 to ``MAX_TASKS``."""
    reason: str | None
    pause_for: timedelta | None = None
    """``--for``: stop only; the tasks are started again by themselves after this long."""
    at: TimeOfDay | datetime | None = None
    """``--at``: run at this time (an aware datetime, or a time of day) instead of at once."""


@dataclass(frozen=True, slots=True)
class ListCommand:
    """``/dumptask list <stream>``: show the stream's dump tasks."""

    stream: str


@dataclass(frozen=True, slots=True)
class StatusCommand:
    """``/dumptask status [<request-id>]``: one request's history, or the caller's recent ones."""

    request_id: str | None


Command = HelpCommand | TaskCommand | ListCommand | StatusCommand


def usage_line(subcommand: str) -> str:
    """The mrkdwn ``Usage: ...`` line of one sub-command, for error messages."""
    return f"Usage: {_code(_SYNTAX[subcommand], limit=None)}"


def usage_text(allowed_streams: Sequence[str] = (), allowed_channels: Sequence[str] = ()) -> str:
    """The help message (mrkdwn), ending with the streams and channels the bot may be used on."""
    streams = ", ".join(_code(pattern, limit=None) for pattern in allowed_streams) or "any"
    channels = ", ".join(f"<#{escape_mrkdwn(channel)}>" for channel in allowed_channels) or "any"
    return f"{USAGE}\nStreams you may use: {streams}\nChannels: {channels}"


def _usage() -> str:
    commands = "\n".join(
        f"• {_code(_SYNTAX[name], limit=None)}: {_SUMMARY[name]}"
        for name in ("start", "stop", "list", "status", "help")
    )
    return (
        "*Start or pause DIS dump tasks, after another on-call engineer approves*\n"
        f"{commands}\n"
        "A task is a name or an id; separate several with spaces or commas, at most "
        f'{MAX_TASKS} per request. `--reason "..."` (or `-r "..."`) puts a reason on the '
        "approval card; `--for 2h` pauses for that long and then starts the tasks again by "
        "itself; `--at 14:30` runs the request at that time, once approved.\n"
        f"Example: {_code(EXAMPLE, limit=None)}"
    )


def parse_command(text: str) -> Command:
    """Turn the text after ``/dumptask`` into a command, or raise ``CommandError`` saying why."""
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandError(
            f"That command is {len(text)} characters long; a command may be at most "
            f"{MAX_COMMAND_LENGTH} characters (a reason at most {MAX_REASON_LENGTH}). "
            "Link to the incident instead of pasting it."
        )
    text = _normalise(text)
    words = text.split()
    if not words or words[0].lower() == "help":
        # Help never fails, whatever follows it.
        return HelpCommand()
    tokens = _tokenise(text)
    name, args = tokens[0].lower(), tokens[1:]
    if name in (Action.START, Action.STOP):
        return _parse_task_command(Action(name), args)
    if name == "list":
        return _parse_list(args)
    if name == "status":
        return _parse_status(args)
    if name == "help":
        return HelpCommand()
    raise _unknown_subcommand(tokens[0])


def _normalise(text: str) -> str:
    """Undo Slack's escaping and the typography phones add, so shlex sees plain text."""
    text = unescape_mrkdwn(text).replace("\u00a0", " ")
    text = _APOSTROPHE.sub(_APOSTROPHE_STANDIN, text)
    return text.translate(_QUOTES)


def _tokenise(text: str) -> list[str]:
    """Split like a POSIX shell, keeping quoted text together; ``#`` and backslash are plain.

    Pieces of one word (``--reason="a b"``) are joined once the word ends, which keeps the work
    linear in the length of the text (``shlex`` grows each word a character at a time).
    """
    tokens: list[str] = []
    word: list[str] | None = None
    position = 0
    while position < len(text):
        piece = _PIECE.match(text, position)
        if piece is None:
            raise CommandError(
                "A quote was opened but not closed. Put the reason between a pair of quotes, "
                f"like this:\n{_code(EXAMPLE, limit=None)}"
            )
        position = piece.end()
        kind = str(piece.lastgroup)  # every alternative of _PIECE is a named group
        if kind == "blank":
            if word is not None:
                tokens.append("".join(word))
            word = None
        else:
            word = word if word is not None else []
            word.append(piece.group(kind))
    if word is not None:
        tokens.append("".join(word))
    return [token.replace(_APOSTROPHE_STANDIN, "'") for token in tokens]


def _parse_task_command(action: Action, args: list[str]) -> TaskCommand:
    subcommand = action.value
    options: dict[str, str] = {}
    positional: list[str] = []
    remaining = iter(args)
    for token in remaining:
        flag = "--" + token[1:] if token.startswith(_DASHES) else token
        if not flag.startswith("-"):
            positional.append(token)
            continue
        name, has_value, value = flag.partition("=")
        option = "--reason" if name.lower() in _REASON_FLAGS else name.lower()
        if option not in ("--reason", _FOR_FLAG, _AT_FLAG):
            raise _error(
                f"I don't know the option {_code(token)}. The options are {_OPTIONS_HELP}.",
                subcommand,
            )
        if option in options:
            raise _error(f"Give `{option}` only once.", subcommand)
        options[option] = value if has_value else next(remaining, "")
    reason = _check_reason(options["--reason"], subcommand) if "--reason" in options else None
    pause_for = _check_for(options[_FOR_FLAG], action) if _FOR_FLAG in options else None
    at = _check_at(options[_AT_FLAG], subcommand) if _AT_FLAG in options else None

    items = [item.strip() for token in positional for item in token.split(",")]
    names = [item for item in items if item]
    if not names:
        raise _error(
            f"Which stream? `{subcommand}` needs a stream and at least one task.", subcommand
        )
    stream, tasks = names[0], tuple(dict.fromkeys(names[1:]))
    _check_name(stream, "stream name", subcommand)
    if not tasks:
        raise _error(
            f"Which tasks of {_code(stream)}? Give at least one task name or id after the stream.",
            subcommand,
        )
    for task in tasks:
        _check_name(task, "task", subcommand)
    if len(tasks) > MAX_TASKS:
        raise _error(
            f"That is {len(tasks)} tasks, but a stream holds at most {MAX_TASKS} dump tasks, so "
            f"one request may name at most {MAX_TASKS}. Check the names with "
            f"{_code('/dumptask list ' + stream, limit=None)}.",
            subcommand,
        )
    return TaskCommand(
        action=action, stream=stream, tasks=tasks, reason=reason, pause_for=pause_for, at=at
    )


def _check_for(value: str, action: Action) -> timedelta:
    """``--for 30m``, ``2h``, ``1h30m`` (seconds too, which only the demo accepts)."""
    if action is not Action.STOP:
        raise _error(
            "`--for` pauses tasks for a while, so it goes with `stop`. To start later, use "
            "`--at 14:30`.",
            action.value,
        )
    text = value.strip().lower().replace(" ", "")
    match = _DURATION.fullmatch(text)
    if not text or match is None or not any(match.groupdict().values()):
        raise _error(
            f"{_code(value or '--for')} is not a duration. Write minutes or hours, like "
            "`--for 30m`, `--for 2h` or `--for 1h30m`.",
            action.value,
        )
    parts = {unit: int(amount or 0) for unit, amount in match.groupdict().items()}
    duration = timedelta(hours=parts["h"], minutes=parts["m"], seconds=parts["s"])
    if duration <= timedelta(0):
        raise _error("`--for` needs a duration longer than zero, like `--for 30m`.", action.value)
    return duration


def _check_at(value: str, subcommand: str) -> TimeOfDay | datetime:
    """``--at 14:30`` (the requester's time zone) or an ISO time with its offset."""
    text = value.strip()
    if match := _TIME_OF_DAY.fullmatch(text):
        return TimeOfDay(int(match["hour"]), int(match["minute"]))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _error(
            f"{_code(value or '--at')} is not a time I can use. Write a time of day in your "
            "Slack time zone, like `--at 14:30`, or a full time with its offset, like "
            "`--at 2026-11-29T14:30+01:00`.",
            subcommand,
        )
    return moment


def _check_reason(value: str, subcommand: str) -> str:
    reason = value.strip()
    if not reason:
        raise _error(
            '`--reason` needs some text after it, in quotes: `--reason "INC-4312 OBS dump '
            'stalled"`.',
            subcommand,
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise _error(
            f"The reason is {len(reason)} characters long; at most {MAX_REASON_LENGTH} fit on "
            "the card. Link to the incident instead.",
            subcommand,
        )
    return reason


def _check_name(name: str, what: str, subcommand: str) -> None:
    """Raise unless ``name`` has the shape DIS allows for stream names, task names and ids."""
    if NAME.fullmatch(name):
        return
    rule = f"Names and ids are 1-{MAX_NAME_LENGTH} letters, digits, `_` or `-`."
    if len(name) > MAX_NAME_LENGTH:
        problem = f"is too long: {len(name)} characters, at most {MAX_NAME_LENGTH}."
    else:
        bad = dict.fromkeys(char for char in name if not NAME.fullmatch(char))
        problem = f"has characters that are not allowed: {', '.join(map(_show_char, bad))}."
    raise _error(f"The {what} {_code(name)} {problem} {rule}", subcommand)


def _parse_list(args: list[str]) -> ListCommand:
    if not args:
        raise _error("Which stream? `list` needs a stream name.", "list")
    if len(args) > 1:
        raise _error(
            f"`list` takes one stream, but got {len(args)} words: "
            f"{' '.join(_code(arg) for arg in args)}.",
            "list",
        )
    _check_name(args[0], "stream name", "list")
    return ListCommand(stream=args[0])


def _parse_status(args: list[str]) -> StatusCommand:
    if len(args) > 1:
        raise _error(
            f"`status` takes at most one request id, but got {len(args)} words: "
            f"{' '.join(_code(arg) for arg in args)}.",
            "status",
        )
    return StatusCommand(request_id=args[0] if args else None)


def _unknown_subcommand(word: str) -> CommandError:
    lowered = word.lower()
    guess = _ALIASES.get(lowered) or next(
        iter(difflib.get_close_matches(lowered, SUBCOMMANDS, n=1)), None
    )
    if guess is not None:
        return _error(f"I don't know {_code(word)}. Did you mean `{guess}`?", guess)
    choices = ", ".join(f"`{name}`" for name in SUBCOMMANDS)
    return CommandError(
        f"I don't know {_code(word)}. The sub-commands are {choices}; "
        "`/dumptask help` shows examples."
    )


def _error(problem: str, subcommand: str) -> CommandError:
    """A ``CommandError`` saying what was wrong, then the sub-command's correct form."""
    return CommandError(f"{problem}\n{usage_line(subcommand)}")


def _code(text: str, *, limit: int | None = _ECHO_LIMIT) -> str:
    """Show ``text`` as inline code, escaped, and shortened when it is an echo of user input."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    # Inline code cannot contain a backtick, so a typed one is shown as a straight quote.
    if not text:
        return '`""`'
    return "`" + escape_mrkdwn(text.replace("`", "'")) + "`"


def _show_char(char: str) -> str:
    """Name a character so it is visible in a message even if it is a space or invisible."""
    if char == " ":
        return "a space"
    if char == "`":
        return "a backtick"
    if not char.isprintable():
        return f"U+{ord(char):04X}"
    return _code(char)


USAGE: Final = _usage()
"""The help message without the streams and channels lines (see :func:`usage_text`)."""
