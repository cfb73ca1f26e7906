"""The one way the Slack stand-in refuses a Web API call: an error code, as Slack answers it."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ApiError"]


class ApiError(Exception):
    """A Slack error code, answered with HTTP 200 and ``ok: false``.

    ``messages`` become ``response_metadata.messages``, where Slack explains what was wrong
    with a view (``[ERROR] must define submit to use input block [json-pointer:...]``).
    """

    def __init__(self, error: str, messages: Iterable[str] = ()) -> None:
        self.messages = tuple(messages)
        super().__init__(error if not self.messages else f"{error}: {'; '.join(self.messages)}")
        self.error = error
