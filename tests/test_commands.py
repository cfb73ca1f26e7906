"""Tests for ``bot.commands`` (parsing ``/dumptask ...``) and ``bot.text`` (mrkdwn escaping)."""

from __future__ import annotations

import dataclasses
import shlex
import timeit

import pytest

from bot.commands import (
    EXAMPLE,
    MAX_COMMAND_LENGTH,
    MAX_TASKS,
    USAGE,
    Action,
    HelpCommand,
    ListCommand,
    StatusCommand,
    TaskCommand,
    _tokenise,
    parse_command,
    usage_line,
    usage_text,
)
from bot.errors import CommandError
from bot.text import escape_mrkdwn, unescape_mrkdwn

LDQ = "\N{LEFT DOUBLE QUOTATION MARK}"
RDQ = "\N{RIGHT DOUBLE QUOTATION MARK}"
LSQ = "\N{LEFT SINGLE QUOTATION MARK}"
RSQ = "\N{RIGHT SINGLE QUOTATION MARK}"
LOW_DQ = "\N{DOUBLE LOW-9 QUOTATION MARK}"

START_USAGE = (
    "Usage: `/dumptask start &lt;stream&gt; &lt;task&gt; [&lt;task&gt;...] [--at 14:30] "
    '[--reason "..."]`'
)
STOP_USAGE = (
    "Usage: `/dumptask stop &lt;stream&gt; &lt;task&gt; [&lt;task&gt;...] [--for 2h] "
    '[--at 14:30] [--reason "..."]`'
)
LIST_USAGE = "Usage: `/dumptask list &lt;stream&gt;`"
STATUS_USAGE = "Usage: `/dumptask status [&lt;request-id&gt;]`"


def task(
    stream: str = "orders-stream",
    tasks: tuple[str, ...] = ("orders-to-obs",),
    reason: str | None = None,
    action: Action = Action.START,
) -> TaskCommand:
    """Build the ``TaskCommand`` a test expects, with the defaults most tests share."""
    return TaskCommand(action=action, stream=stream, tasks=tasks, reason=reason)


def error_of(text: str) -> str:
    """Parse ``text``, which must fail, and return the error message."""
    with pytest.raises(CommandError) as info:
        parse_command(text)
    return str(info.value)


# --- Action ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "value", "state"),
    [(Action.START, "start", "RUNNING"), (Action.STOP, "stop", "PAUSED")],
)
def test_action_names_its_value_and_target_state(action: Action, value: str, state: str) -> None:
    """Each action is the string DIS expects and knows the state it leads to."""
    assert action == value
    assert action.target_state == state


def test_commands_are_frozen() -> None:
    """A parsed command cannot be changed after the fact."""
    command = parse_command("start orders-stream orders-to-obs")
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.stream = "other"  # type: ignore[misc]


# --- valid forms -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "help", "HELP", "Help", "help start", 'help "oops'])
def test_help(text: str) -> None:
    """No text, or ``help`` in any case with anything after it, asks for the help."""
    assert parse_command(text) == HelpCommand()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start orders-stream orders-to-obs", task()),
        ("START orders-stream orders-to-obs", task()),
        ("Stop orders-stream orders-to-obs", task(action=Action.STOP)),
        ("stop   orders-stream\torders-to-obs  ", task(action=Action.STOP)),
        ("start orders-stream\u00a0orders-to-obs", task()),
    ],
)
def test_subcommand_is_case_and_space_insensitive(text: str, expected: TaskCommand) -> None:
    """``start`` and ``stop`` are read in any case and with any amount of white space."""
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "tasks"),
    [
        ("start s a b c", ("a", "b", "c")),
        ("start s a,b,c", ("a", "b", "c")),
        ("start s a,b c , d", ("a", "b", "c", "d")),
        ("start s ,a,,b,", ("a", "b")),
        ("start s, a", ("a",)),
        (
            "start s 9dSu1wfCytSk1aOLxvF,2QqqWoPUIZNk6kt5yC2",
            ("9dSu1wfCytSk1aOLxvF", "2QqqWoPUIZNk6kt5yC2"),
        ),
    ],
)
def test_tasks_are_separated_by_spaces_or_commas(text: str, tasks: tuple[str, ...]) -> None:
    """Tasks may be separated by spaces, commas or both, and empty items are ignored."""
    assert parse_command(text) == task(stream="s", tasks=tasks)


@pytest.mark.parametrize(
    ("text", "tasks"),
    [
        ("start s a a", ("a",)),
        ("start s b a b,a c", ("b", "a", "c")),
        ("start s a b c d e a b c d e", ("a", "b", "c", "d", "e")),
    ],
)
def test_duplicate_tasks_collapse_in_first_seen_order(text: str, tasks: tuple[str, ...]) -> None:
    """A task named twice is asked for once, keeping the order it was first given in."""
    assert parse_command(text) == task(stream="s", tasks=tasks)


def test_task_names_are_case_sensitive() -> None:
    """Task ids differ by case, so ``A`` and ``a`` are two tasks."""
    assert parse_command("start s A a") == task(stream="s", tasks=("A", "a"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('start s t --reason "INC-4312 OBS dump stalled"', "INC-4312 OBS dump stalled"),
        ("start s t --reason 'INC-4312 OBS dump stalled'", "INC-4312 OBS dump stalled"),
        ('start s t -r "INC-4312 OBS dump stalled"', "INC-4312 OBS dump stalled"),
        ('start s t -R "INC-4312"', "INC-4312"),
        ('start s t --Reason "INC-4312"', "INC-4312"),
        ('start s t --reason="INC-4312 OBS dump stalled"', "INC-4312 OBS dump stalled"),
        ("start s t --reason=INC-4312", "INC-4312"),
        ("start s t -r=INC-4312", "INC-4312"),
        ('start s t --reason "two  spaces kept"', "two  spaces kept"),
        ('start s t --reason "  trimmed  "', "trimmed"),
        ('start s t -r "INC #4312"', "INC #4312"),
        ('start s t -r "see C:\\logs\\dis"', "see C:\\logs\\dis"),
        ('start s t -r "café ünïcode 事件"', "café ünïcode 事件"),
    ],
)
def test_reason_forms(text: str, reason: str) -> None:
    """``--reason``, ``-r`` and ``--reason=`` take a quoted reason, keeping its inner spaces."""
    assert parse_command(text) == task(stream="s", tasks=("t",), reason=reason)


def test_unquoted_reason_takes_one_word() -> None:
    """Without quotes, ``--reason`` takes only the next word; the words after it are tasks."""
    assert parse_command("start s -r INC-4312 a b") == task(
        stream="s", tasks=("a", "b"), reason="INC-4312"
    )


@pytest.mark.parametrize(
    "text",
    [
        'start --reason "INC 1" s a b',
        'start s --reason "INC 1" a b',
        'start s a --reason "INC 1" b',
        'start s a b --reason "INC 1"',
        'start s a --reason="INC 1" b',
    ],
)
def test_reason_may_come_anywhere_after_the_subcommand(text: str) -> None:
    """The reason may come before, between or after the stream and tasks."""
    assert parse_command(text) == task(stream="s", tasks=("a", "b"), reason="INC 1")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('start s t -r "can\'t start"', "can't start"),
        (f"start s t -r {LDQ}can{RSQ}t start{RDQ}", "can't start"),
        ("start s t -r can't", "can't"),
        (f"start s t -r can{RSQ}t", "can't"),
        ("start s t -r 'it's down'", "it's down"),
        (f"start s t -r {LSQ}it{RSQ}s down{RSQ}", "it's down"),
        ("start s t -r \"say 'hi'\"", "say 'hi'"),
    ],
)
def test_apostrophes_in_a_reason(text: str, reason: str) -> None:
    """An apostrophe inside a word is kept and never taken for an opening quote."""
    assert parse_command(text) == task(stream="s", tasks=("t",), reason=reason)


@pytest.mark.parametrize(
    "text",
    [
        f"start s t --reason {LDQ}INC-4312 OBS dump stalled{RDQ}",
        f"start s t --reason {LSQ}INC-4312 OBS dump stalled{RSQ}",
        f"start s t --reason {LOW_DQ}INC-4312 OBS dump stalled{LDQ}",
        f"start s t --reason {LDQ}INC-4312 OBS dump stalled{LDQ}",
        f"start s t \N{EM DASH}reason {LDQ}INC-4312 OBS dump stalled{RDQ}",
        f"start s t \N{EN DASH}reason {LDQ}INC-4312 OBS dump stalled{RDQ}",
    ],
)
def test_phone_typography_works_like_plain_quotes_and_dashes(text: str) -> None:
    """Curly or low quotes and an em or en dash for ``--`` read like what the user meant."""
    assert parse_command(text) == task(stream="s", tasks=("t",), reason="INC-4312 OBS dump stalled")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('start s t -r "&lt;!channel&gt; ping"', "<!channel> ping"),
        ('start s t -r "R&amp;D &amp; ops"', "R&D & ops"),
        ('start s t -r "typed &amp;lt; literally"', "typed &lt; literally"),
        ("start s t -r &lt;@U123&gt;", "<@U123>"),
    ],
)
def test_slack_escaped_text_arrives_as_typed(text: str, reason: str) -> None:
    """Slack's ``&amp;``, ``&lt;`` and ``&gt;`` are undone once, giving the text as typed."""
    assert parse_command(text) == task(stream="s", tasks=("t",), reason=reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list orders-stream", ListCommand(stream="orders-stream")),
        ("LIST orders-stream", ListCommand(stream="orders-stream")),
        ("status", StatusCommand(request_id=None)),
        ("Status", StatusCommand(request_id=None)),
        ("status 42", StatusCommand(request_id="42")),
        ("status req-7f3a", StatusCommand(request_id="req-7f3a")),
    ],
)
def test_list_and_status(text: str, expected: ListCommand | StatusCommand) -> None:
    """``list <stream>`` and ``status [<request-id>]`` parse into their commands."""
    assert parse_command(text) == expected


def test_example_from_the_help_parses() -> None:
    """The example the help shows is itself a valid command."""
    assert parse_command(EXAMPLE.removeprefix("/dumptask ")) == task(
        tasks=("orders-to-obs", "9dSu1wfCytSk1aOLxvF"), reason="INC-4312 OBS dump stalled"
    )


@pytest.mark.parametrize("length", [1, 64])
def test_names_at_the_length_limits_are_accepted(length: int) -> None:
    """Stream and task names of 1 and 64 characters are valid."""
    name = "a" * length
    assert parse_command(f"start {name} {name}") == task(stream=name, tasks=(name,))


def test_reason_at_the_length_limit_is_accepted() -> None:
    """A reason of exactly 500 characters fits on the card."""
    reason = "x" * 500
    assert parse_command(f"start s t -r {reason}") == task(stream="s", tasks=("t",), reason=reason)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "guess", "usage"),
    [
        ("strat", "start", START_USAGE),
        ("START2", "start", START_USAGE),
        ("stp", "stop", STOP_USAGE),
        ("pause", "stop", STOP_USAGE),
        ("resume", "start", START_USAGE),
        ("lst", "list", LIST_USAGE),
        ("ls", "list", LIST_USAGE),
        ("stats", "status", STATUS_USAGE),
    ],
)
def test_unknown_subcommand_suggests_a_close_one(word: str, guess: str, usage: str) -> None:
    """A mistyped sub-command is named, with the closest real one and its usage."""
    message = error_of(f"{word} orders-stream orders-to-obs")
    assert f"I don't know `{word}`" in message
    assert f"Did you mean `{guess}`?" in message
    assert usage in message


def test_unknown_subcommand_lists_the_subcommands_when_nothing_is_close() -> None:
    """A sub-command like nothing known is answered with the list of sub-commands."""
    message = error_of("frobnicate orders-stream")
    assert "I don't know `frobnicate`" in message
    assert "Did you mean" not in message
    for name in ("help", "start", "stop", "list", "status"):
        assert f"`{name}`" in message
    assert "`/dumptask help`" in message


def test_unknown_subcommand_is_escaped_so_it_cannot_ping() -> None:
    """A ``<!channel>`` typed as the sub-command is echoed escaped, so it pings nobody."""
    message = error_of("&lt;!channel&gt; hello")
    assert "`&lt;!channel&gt;`" in message
    assert "<!channel>" not in message


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("start", START_USAGE),
        ("stop", STOP_USAGE),
        ("start ,,", START_USAGE),
        ('start --reason "INC 1"', START_USAGE),
    ],
)
def test_missing_stream(text: str, usage: str) -> None:
    """``start`` or ``stop`` without a stream asks which stream, with the usage."""
    message = error_of(text)
    assert "Which stream?" in message
    assert usage in message


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("start orders-stream", START_USAGE),
        ("stop orders-stream", STOP_USAGE),
        ("start orders-stream , ,", START_USAGE),
        ('start orders-stream -r "INC 1"', START_USAGE),
    ],
)
def test_missing_tasks(text: str, usage: str) -> None:
    """A stream without tasks asks which tasks, with the usage."""
    message = error_of(text)
    assert "Which tasks of `orders-stream`?" in message
    assert usage in message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("start orders.stream t", "`orders.stream` has characters that are not allowed: `.`"),
        ("start a/b.c t", "`a/b.c` has characters that are not allowed: `/`, `.`"),
        ("start 'my stream' t", "`my stream` has characters that are not allowed: a space"),
        ("start a\u200bb t", "not allowed: U+200B"),
        ("start a`b t", "not allowed: a backtick"),
        ("start straße t", "not allowed: `ß`"),
        ("start a&lt;b t", "`a&lt;b` has characters that are not allowed: `&lt;`"),
    ],
)
def test_stream_with_characters_not_allowed(text: str, shown: str) -> None:
    """A stream name with other characters than ``A-Za-z0-9_-`` names the bad ones."""
    message = error_of(text)
    assert "The stream name `" in message
    assert shown in message
    assert "1-64 letters, digits, `_` or `-`" in message
    assert START_USAGE in message


def test_stream_too_long() -> None:
    """A stream name over 64 characters is refused with its length."""
    message = error_of(f"start {'s' * 65} t")
    assert "is too long: 65 characters, at most 64" in message
    assert START_USAGE in message


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("start s good bad.task", "The task `bad.task` has characters that are not allowed: `.`"),
        ("stop s 'two words'", "The task `two words` has characters that are not allowed: a space"),
        ("start s a;b", "The task `a;b` has characters that are not allowed: `;`"),
        (f"start s {'t' * 65}", "is too long: 65 characters, at most 64"),
    ],
)
def test_task_with_a_bad_shape(text: str, shown: str) -> None:
    """A task token that is not 1-64 of ``A-Za-z0-9_-`` says which rule it broke."""
    message = error_of(text)
    assert shown in message
    assert "1-64 letters, digits, `_` or `-`" in message
    assert "Usage: `/dumptask " in message


def test_too_long_name_is_shortened_in_the_message() -> None:
    """A very long name is not echoed in full, so the message stays short."""
    message = error_of(f"start s {'t' * 1000}")
    assert "t" * 100 not in message
    assert "1000 characters" in message


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("start s a b c d e f", 6),
        ("stop s a,b,c,d,e,f,g", 7),
        ("start s a b c d e f a b", 6),
    ],
)
def test_too_many_tasks(text: str, count: int) -> None:
    """More than five distinct tasks are refused, saying how many were given and the limit."""
    message = error_of(text)
    assert f"That is {count} tasks" in message
    assert f"at most {MAX_TASKS}" in message
    assert "`/dumptask list s`" in message
    assert "Usage: `/dumptask " in message


@pytest.mark.parametrize(
    "text",
    [
        'start s t --reason "INC-4312 OBS dump stalled',
        "start s t -r 'INC-4312",
        f"start s t -r {LDQ}INC-4312",
        'start s "t',
        "start s t -r 'quoted' and '",
    ],
)
def test_unterminated_quote(text: str) -> None:
    """A quote opened and never closed is explained, with an example that closes it."""
    message = error_of(text)
    assert "A quote was opened but not closed" in message
    assert '--reason "INC-4312 OBS dump stalled"`' in message


@pytest.mark.parametrize(
    "text",
    [
        "start s t --reason",
        "start s t -r",
        'start s t --reason ""',
        "start s t -r ''",
        'start s t -r "   "',
        "start s t --reason=",
        f"start s t -r {LDQ}{RDQ}",
    ],
)
def test_reason_without_text(text: str) -> None:
    """``--reason`` with nothing after it asks for the text, showing the quoted form."""
    message = error_of(text)
    assert "`--reason` needs some text after it" in message
    assert '`--reason "INC-4312 OBS dump stalled"`' in message
    assert START_USAGE in message


@pytest.mark.parametrize(
    "text",
    [
        'start s t -r "one" -r "two"',
        'start s t --reason one --reason="two"',
        "stop s t -r one --reason two",
    ],
)
def test_reason_given_twice(text: str) -> None:
    """A second ``--reason`` is refused rather than silently dropping one of them."""
    message = error_of(text)
    assert "Give `--reason` only once" in message
    assert "Usage: `/dumptask " in message


def test_reason_too_long() -> None:
    """A reason over 500 characters is refused with its length."""
    message = error_of(f'start s t -r "{"x" * 501}"')
    assert "The reason is 501 characters long; at most 500" in message
    assert START_USAGE in message


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("start s t --force", "--force"),
        ("start s t -f", "-f"),
        ("stop s t --reasons x", "--reasons"),
        ("start s t --dry-run=yes", "--dry-run=yes"),
        ("start s t -", "-"),
        ("start s t --&lt;!here&gt;", "--&lt;!here&gt;"),
    ],
)
def test_unknown_flag(text: str, flag: str) -> None:
    """An option other than ``--reason``/``-r`` is named, with the options that exist."""
    message = error_of(text)
    assert f"I don't know the option `{flag}`" in message
    assert '`--reason "..."` (or `-r "..."`)' in message
    assert "Usage: `/dumptask " in message
    assert "<!here>" not in message


def test_a_quoted_help_is_help() -> None:
    """``/dumptask "help"`` (quotes and all, as some people type it) shows the help."""
    assert parse_command('"help"') == HelpCommand()


def test_an_empty_quoted_subcommand_is_shown_as_empty_quotes() -> None:
    """A sub-command typed as ``""`` is echoed visibly, never as an empty code span."""
    assert error_of('"" orders-stream').startswith('I don\'t know `""`. The sub-commands are ')


def test_unknown_subcommand_lists_the_subcommands_in_order() -> None:
    """The list of sub-commands reads as a sentence, in the order of the help."""
    message = error_of("frobnicate")
    assert "The sub-commands are `help`, `start`, `stop`, `list`, `status`; " in message


@pytest.mark.parametrize(
    ("flag", "shown"),
    [
        ("--" + "x" * 38, "--" + "x" * 38),
        ("--" + "x" * 39, "--" + "x" * 37 + "…"),
        ("--" + "x" * 60, "--" + "x" * 37 + "…"),
        ("--a`b", "--a'b"),
    ],
    ids=["40 chars", "41 chars", "62 chars", "backtick"],
)
def test_echoed_input_is_cut_at_forty_characters_and_never_breaks_its_code_span(flag, shown):
    """An echo longer than 40 characters ends in an ellipsis; a backtick becomes a quote."""
    assert f"I don't know the option `{shown}`. " in error_of(f"start s t {flag}")


def test_a_64_character_name_with_a_bad_character_names_the_character() -> None:
    """At the length limit a name is not "too long"; what is wrong is its character."""
    name = "a" * 63 + "."
    message = error_of(f"start {name} t")
    assert "has characters that are not allowed: `.`" in message
    assert "too long" not in message


def test_too_many_tasks_on_a_long_stream_shows_the_whole_list_command() -> None:
    """The ``/dumptask list`` hint is a command to copy, so it is never shortened."""
    stream = "orders-stream-with-a-long-name"
    assert f"`/dumptask list {stream}`" in error_of(f"start {stream} a b c d e f")


def test_list_without_a_stream() -> None:
    """``list`` alone asks which stream, with its usage."""
    message = error_of("list")
    assert "Which stream?" in message
    assert LIST_USAGE in message


def test_list_with_extra_words() -> None:
    """``list`` with more than one word says it takes one stream, echoing the words escaped."""
    message = error_of("list a &lt;!channel&gt;")
    assert "`list` takes one stream, but got 2 words: `a` `&lt;!channel&gt;`." in message
    assert LIST_USAGE in message


def test_list_with_a_bad_stream_name() -> None:
    """``list`` checks the stream name like ``start`` does."""
    message = error_of("list orders.stream")
    assert "The stream name `orders.stream` has characters that are not allowed" in message
    assert LIST_USAGE in message


def test_status_with_extra_words() -> None:
    """``status`` with more than one word says it takes at most one request id."""
    message = error_of("status a b")
    assert "`status` takes at most one request id, but got 2 words: `a` `b`." in message
    assert STATUS_USAGE in message


# --- help text ---------------------------------------------------------------------------------


def test_usage_lists_every_subcommand_escaped() -> None:
    """The help shows each sub-command's form with its angle brackets escaped for Slack."""
    for line in (START_USAGE, STOP_USAGE, LIST_USAGE, STATUS_USAGE):
        assert line.removeprefix("Usage: ") in USAGE
    assert "`/dumptask help`" in USAGE
    assert "<stream>" not in USAGE


def test_usage_explains_tasks_reason_and_example() -> None:
    """The help says how to give tasks and a reason, and shows a full example."""
    assert "spaces or commas" in USAGE
    assert "at most 5" in USAGE
    assert '`--reason "..."`' in USAGE
    assert '`-r "..."`' in USAGE
    assert (
        '`/dumptask start orders-stream orders-to-obs 9dSu1wfCytSk1aOLxvF --reason "INC-4312 OBS '
        'dump stalled"`' in USAGE
    )


def test_usage_text_says_any_when_nothing_is_restricted() -> None:
    """With no allowed streams or channels configured, the help says any may be used."""
    text = usage_text()
    assert text.startswith(USAGE)
    assert text.endswith("\nStreams you may use: any\nChannels: any")


def test_usage_text_shows_allowed_streams_and_channels() -> None:
    """Allowed stream patterns are shown as escaped code and channels as mentions."""
    text = usage_text(["orders-*", "billing-[ab]", "x<y>&z"], ["C123", "G456"])
    assert "Streams you may use: `orders-*`, `billing-[ab]`, `x&lt;y&gt;&amp;z`" in text
    assert "Channels: <#C123>, <#G456>" in text


def test_usage_text_shows_long_stream_patterns_in_full() -> None:
    """A stream pattern is configuration, not an echo: it is never shortened."""
    pattern = "orders-" + "x" * 50 + "-*"
    assert f"Streams you may use: `{pattern}`\n" in usage_text([pattern])


@pytest.mark.parametrize(
    ("subcommand", "line"),
    [("start", START_USAGE), ("stop", STOP_USAGE), ("list", LIST_USAGE), ("status", STATUS_USAGE)],
)
def test_usage_line(subcommand: str, line: str) -> None:
    """Each sub-command has a one-line usage in mrkdwn."""
    assert usage_line(subcommand) == line


def test_text_over_the_length_limit_is_refused_with_the_limit() -> None:
    """A text longer than any valid command is refused, saying how long a command may be."""
    text = "start orders-stream a -r " + "x" * MAX_COMMAND_LENGTH
    with pytest.raises(CommandError, match=f"at most {MAX_COMMAND_LENGTH} characters"):
        parse_command(text)


def test_text_at_the_length_limit_is_parsed() -> None:
    """A text exactly as long as the limit is parsed like any other."""
    text = "start orders-stream a " + "b" * (MAX_COMMAND_LENGTH - len("start orders-stream a "))
    with pytest.raises(CommandError, match="too long: 3978 characters"):
        parse_command(text)


def shell_words(text: str) -> list[str]:
    """How ``shlex`` in POSIX mode, without comments or escapes, splits ``text``."""
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    return list(lexer)


@pytest.mark.parametrize(
    "text",
    [
        "start s a b",
        "  start\ts\r\na   ",
        '-r "a b" c',
        "-r 'a b' c",
        'x"a b"y',
        '--reason="INC #4312: it\'s \\ down"',
        "a '' \"\" b",
        "a\"\"b''c",
        "'a\"b' \"c'd\"",
        '"",""',
        "",
    ],
)
def test_words_split_like_a_posix_shell(text: str) -> None:
    """Words split on blanks; quotes group and vanish; ``#`` and backslash are plain text."""
    assert _tokenise(text) == shell_words(text)


def test_tokenising_time_is_linear_in_the_length_of_the_text() -> None:
    """Eight times the text, as many words or as one long word, takes about eight times as long."""

    def fastest(text: str) -> float:
        return min(timeit.repeat(lambda: _tokenise(text), number=3, repeat=7))

    shapes = {
        "many words": lambda size: "ab " * (size // 3),
        "one long word": lambda size: "a" * size,
        "one long quoted word": lambda size: '"' + "a " * (size // 2) + '"',
        "one word of many pieces": lambda size: 'a"b"' * (size // 4),
    }
    for shape, make in shapes.items():
        small, large = fastest(make(20_000)), fastest(make(160_000))
        assert large < 24 * small, f"{shape}: {large / small:.0f} times as long"


# --- bot.text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),
        ("<&>", "&lt;&amp;&gt;"),
        ("plain *bold* _it_ `code`", "plain *bold* _it_ `code`"),
        ("", ""),
    ],
)
def test_escape_mrkdwn(text: str, escaped: str) -> None:
    """Exactly ``&``, ``<`` and ``>`` are escaped, ``&`` first so nothing is escaped twice."""
    assert escape_mrkdwn(text) == escaped


@pytest.mark.parametrize("text", ["<!channel>", "a & b", "&lt; typed", "&amp;amp;", "<&>&<"])
def test_unescape_mrkdwn_undoes_escape(text: str) -> None:
    """Unescaping what was escaped gives back the original text."""
    assert unescape_mrkdwn(escape_mrkdwn(text)) == text
