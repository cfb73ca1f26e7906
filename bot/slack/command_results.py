"""How a slash command ended, in the words ``dumptask_commands_total`` counts it by."""

from __future__ import annotations

from bot.commands import Command, HelpCommand, ListCommand, StatusCommand, TaskCommand
from bot.errors import CommandError, Refusal

INVALID = "invalid"


def command_kind(command: Command) -> str:
    """The sub-command: ``start``, ``stop``, ``list``, ``status`` or ``help``."""
    match command:
        case TaskCommand():
            return command.action.value
        case ListCommand():
            return "list"
        case StatusCommand():
            return "status"
        case HelpCommand():
            return "help"
    return INVALID


def command_result(failure: Exception | None) -> str:
    """How the command ended: ``parsed``, ``refused``, ``error`` or ``failed``.

    ``parsed``: done as asked; ``refused``: the rules said no (a ``Refusal``); ``error``: the
    user's mistake, a typo or a channel without the bot (a ``CommandError``); ``failed``: the
    bot's side failed (the store, Slack, a bug).
    """
    if failure is None:
        return "parsed"
    if isinstance(failure, Refusal):
        return "refused"
    if isinstance(failure, CommandError):
        return "error"
    return "failed"
