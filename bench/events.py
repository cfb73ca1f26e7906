"""What the Slack stand-in saw the bot do, as the benchmark reads it: one ``Event`` per call.

The Slack stand-in process (``bench.slack_server``) builds them; the load generator's process
fetches and indexes them (``bench.observe``). Recognising the bot's answers by their words is
the only way a black box allows; the phrases are the ones ``bot/slack/listeners.py`` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

# The generic error, and the answer when the bot's database could not be reached: both tell
# the user their request may not have happened.
ERROR_PHRASES = ("something went wrong", "could not reach my database")
QUEUED_PHRASE = "queued"


@dataclass(frozen=True, slots=True)
class Event:
    """One Web API call or response URL post, timed by the stand-in (``time.monotonic()``).

    ``kind`` is ``card`` (a new top-level message naming a benchmark task), ``reply`` (a
    message in a thread), ``message`` (any other top-level message), ``update``,
    ``ephemeral``, ``response`` (a response URL post, ``ts`` holding its token) or the Web API
    method's name. ``note`` is ``error`` for the bot's generic error answers, ``queued`` for an
    answer saying the request was queued, else empty. ``task`` is the benchmark task the
    message names, if any.
    """

    started: float
    ended: float
    kind: str
    channel: str
    ts: str
    thread_ts: str
    task: str
    note: str
    status: int


def note_of(text: str) -> str:
    """``error``, ``queued`` or nothing, for what the bot said."""
    lowered = text.lower()
    if any(phrase in lowered for phrase in ERROR_PHRASES):
        return "error"
    return "queued" if QUEUED_PHRASE in lowered else ""
