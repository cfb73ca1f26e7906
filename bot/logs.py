"""Structured logs: one handler on the root logger, text or JSON lines, with the request's context.

Who asked, in which channel, about which request, stream and action is known at a few places
(a listener receiving a command or a click, the service opening or running a request) and is
wanted on every line logged after that, including the lines of Bolt, the Slack SDK and httpx.
It is therefore kept in a context variable rather than passed to every call: ``bind`` adds
fields for the rest of the current asyncio task (tasks created later copy them), and
``log_context`` does the same for a ``with`` block. ``ContextFilter``, on the one handler,
copies them onto each record; a field passed explicitly with ``extra=`` wins over the context.

``configure_logging`` installs that handler with one of two formats:

- ``text``: ``<time> <LEVEL> <logger>: <message>`` followed by the known fields as
  ``key=value`` (``request_id=dt-k7m2q9xa user=U0... channel=C0...``), then any traceback;
- ``json``: one object per line with ``time`` (ISO 8601, UTC), ``level``, ``logger``,
  ``message``, the known fields, and ``traceback`` when an exception is logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TextIO

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CONTEXT_FIELDS = ("request_id", "user", "channel", "stream", "action", "dis_request_id")
# Libraries that install handlers of their own unless told otherwise; their lines must go
# through the root handler like everybody else's.
FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("dumptask_log_context", default=_EMPTY)

ContextToken = Token[Mapping[str, str]]


def bind(**fields: object) -> ContextToken:
    """Add ``fields`` to the log context of the current task; ``None`` values are skipped.

    Returns the token that ``unbind`` takes to restore the previous context. Only the names in
    ``CONTEXT_FIELDS`` are accepted, so that a typo fails loudly instead of vanishing.
    """
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s): {', '.join(sorted(unknown))}")
    added = {name: str(value) for name, value in fields.items() if value is not None}
    return _context.set(MappingProxyType({**_context.get(), **added}))


def unbind(token: ContextToken) -> None:
    """Restore the context as it was before the ``bind`` that returned ``token``."""
    _context.reset(token)


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """``bind`` for the duration of a ``with`` block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def current_context() -> Mapping[str, str]:
    """The fields bound in the current task."""
    return _context.get()


class ContextFilter(logging.Filter):
    """Copy the bound fields onto each record, unless the call passed them with ``extra=``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; only add to it."""
        for name, value in _context.get().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def record_fields(record: logging.LogRecord) -> dict[str, str]:
    """The context fields a record carries, in ``CONTEXT_FIELDS`` order."""
    fields = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = str(value)
    return fields


def utc_timestamp(record: logging.LogRecord) -> str:
    """When the record was made, as ISO 8601 in UTC with milliseconds: ``...T09:30:15.123Z``."""
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=value ...``, then the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        """One readable line (more with a traceback)."""
        line = f"{utc_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        for name, value in record_fields(record).items():
            shown = json.dumps(value) if not value or any(c in value for c in ' ="') else value
            line += f" {name}={shown}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, context fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON (newlines in the message are escaped)."""
        document: dict[str, str] = {
            "time": utc_timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **record_fields(record),
        }
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["traceback"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False)


def configure_logging(
    log_format: str, level: str | int, *, stream: TextIO | None = None
) -> logging.Handler:
    """Make one handler on the root logger the only place log lines go, in ``log_format``.

    Every other root handler is removed, and the loggers of libraries that bring their own
    (uvicorn's) are emptied and made to propagate, so that their lines come out in the same
    format. Lines go to ``stream`` (standard error by default). Returns the handler.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; expected text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in FOREIGN_LOGGERS:
        foreign = logging.getLogger(name)
        for existing in list(foreign.handlers):
            foreign.removeHandler(existing)
        foreign.propagate = True
    return handler
