"""The fixed values every process of the benchmark shares: credentials, people, names.

The secrets are samples for loopback stand-ins, never real ones. The stand-ins' sample
workspace provides the people: alice asks, bob approves.
"""

from __future__ import annotations

import re
from typing import Final

PROJECT: Final = "0123456789abcdef0123456789abcdef"
DIS_AK: Final = "BENCHACCESSKEY"
DIS_SK: Final = "BENCHSECRETKEYVALUE"
BOT_TOKEN: Final = "xoxb-bench-bot-token"  # noqa: S105 - a loopback sample
SIGNING_SECRET: Final = "bench-signing-secret"  # noqa: S105 - a loopback sample

REQUESTER: Final = "U0REQUESTER"
APPROVER: Final = "U0APPROVER1"
CHANNEL: Final = "C0INCIDENT"
APPROVE_ACTION_ID: Final = "dumptask.approve"

TASKS_PER_STREAM: Final = 5
# Every command names one task of its own, so a card can be matched to its command by the
# task's name and no command is refused because another request holds its task.
TASK_NAME: Final = re.compile(r"\bbt\d{6}\b")


def stream_name(number: int) -> str:
    """The name of stream ``number`` in the generated DIS data."""
    return f"bs{number:05d}"


def task_name(number: int) -> str:
    """The name of task ``number`` (globally unique) in the generated DIS data."""
    return f"bt{number:06d}"


def command_text(number: int) -> str:
    """The text after ``/dumptask`` that asks to start task ``number``, on its own."""
    return f"start {stream_name(number // TASKS_PER_STREAM)} {task_name(number)} -r bench"
