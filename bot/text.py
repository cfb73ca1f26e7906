"""Slack mrkdwn control characters: escaping text we send and reading back text Slack sent.

Slack treats ``&``, ``<`` and ``>`` as control characters (``<!channel>`` pings everyone,
``<https://x|y>`` is a link), so any text a user or DIS typed must have exactly those three
replaced by HTML entities before it goes into a message. Slack escapes the same three in the text
of a slash command, so reading it back undoes them.
"""

from __future__ import annotations


def escape_mrkdwn(text: str) -> str:
    """Replace Slack's three control characters so ``text`` shows literally and pings nobody."""
    # ``&`` goes first: done later, it would turn the ``&lt;`` just written into ``&amp;lt;``.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_mrkdwn(text: str) -> str:
    """Undo :func:`escape_mrkdwn`, giving back the text as the user typed it."""
    # ``&amp;`` goes last: done first, a typed ``&lt;`` (sent as ``&amp;lt;``) would become ``<``.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
