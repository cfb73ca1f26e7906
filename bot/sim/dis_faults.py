"""Faults the stand-in can inject: slow, dropped, throttled, failing or garbled answers.

They model trouble in the network and the gateway, so they are applied as a request arrives,
before the signature is checked or the path is routed. A fault fires on the next ``count``
matching calls, or on a ``fraction`` of them drawn from a seedable ``random.Random`` (both may
be given: a fraction of calls, at most ``count`` times), optionally only for one HTTP method
and/or for paths containing a substring. Latency faults add up and let the call go on; of the
other kinds only the first matching one fires per call, in the order they were injected.
"""

from __future__ import annotations

import enum
import http
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, Unpack

from bot.sim.dis_api import DIS_CONTENT_TYPE, Reply, dis_error, gateway_error

if TYPE_CHECKING:
    import random

THROTTLED_MESSAGE = "The throttling threshold has been reached"
MALFORMED_BODY = b"<html>oops"


class FaultKind(enum.Enum):
    """What a fault does to a matching call."""

    STATUS = "status"
    THROTTLE = "throttle"
    DIS_ERROR = "dis_error"
    GATEWAY_ERROR = "gateway_error"
    LATENCY = "latency"
    MALFORMED = "malformed"
    DROP = "drop"


class When(TypedDict, total=False):
    """Which calls a fault applies to; see the module docstring."""

    count: int | None
    fraction: float | None
    method: str | None
    path: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One injected fault; build it with the class methods, e.g. ``Fault.status(503, count=2)``."""

    kind: FaultKind
    http_status: int = 200
    code: str = ""
    message: str = ""
    body: bytes | None = None
    retry_after: int | None = None
    seconds: float = 0.0
    count: int | None = None
    fraction: float | None = None
    method: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError("a fault's count must be at least 1")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError("a fault's fraction must be between 0 and 1")
        if self.seconds < 0:
            raise ValueError("a latency must not be negative")

    @classmethod
    def status(cls, status: int, *, body: bytes | None = None, **when: Unpack[When]) -> Fault:
        """Answer with ``status`` and the body the real stack would send for it.

        500 comes from DIS (DIS.5000); 502/503 and 504 from the gateway (backend unavailable or
        timed out); anything else is a gateway error with the status's reason phrase. ``body``
        replaces that default.
        """
        return cls(kind=FaultKind.STATUS, http_status=status, body=body, **_when(when))

    @classmethod
    def throttle(cls, retry_after: int = 1, **when: Unpack[When]) -> Fault:
        """The gateway's 429 APIGW.0308 with a ``Retry-After`` header."""
        return cls(kind=FaultKind.THROTTLE, http_status=429, retry_after=retry_after, **_when(when))

    @classmethod
    def dis_error(cls, status: int, code: str, message: str, **when: Unpack[When]) -> Fault:
        """Any DIS-shaped error, e.g. ``Fault.dis_error(400, "DIS.4305", "Too many requests")``."""
        return cls(
            kind=FaultKind.DIS_ERROR, http_status=status, code=code, message=message, **_when(when)
        )

    @classmethod
    def gateway_error(cls, status: int, code: str, message: str, **when: Unpack[When]) -> Fault:
        """Any gateway-shaped error, with the call's request id in its body."""
        return cls(
            kind=FaultKind.GATEWAY_ERROR,
            http_status=status,
            code=code,
            message=message,
            **_when(when),
        )

    @classmethod
    def latency(cls, seconds: float, **when: Unpack[When]) -> Fault:
        """Wait ``seconds`` before handling the call normally (or applying another fault)."""
        return cls(kind=FaultKind.LATENCY, seconds=seconds, **_when(when))

    @classmethod
    def malformed(
        cls, body: bytes = MALFORMED_BODY, status: int = 200, **when: Unpack[When]
    ) -> Fault:
        """Answer ``status`` with a body that is not the JSON promised, as a broken proxy might.

        A body starting with ``<`` is labelled ``text/html`` (an error page); anything else,
        such as truncated JSON, keeps DIS's JSON content type.
        """
        return cls(kind=FaultKind.MALFORMED, http_status=status, body=body, **_when(when))

    @classmethod
    def drop(cls, **when: Unpack[When]) -> Fault:
        """Close the connection without answering, so the client sees a transport error."""
        return cls(kind=FaultKind.DROP, **_when(when))

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault is aimed at a call with this method and raw path."""
        method_ok = self.method is None or self.method.upper() == method.upper()
        return method_ok and (self.path is None or self.path in path)

    def reply(self, request_id: str) -> Reply | None:
        """The answer this fault gives, or ``None`` for latency and dropped connections."""
        match self.kind:
            case FaultKind.STATUS:
                if self.body is not None:
                    return Reply(self.http_status, self.body, {"Content-Type": "application/json"})
                return _status_reply(self.http_status, request_id)
            case FaultKind.THROTTLE:
                headers = {"Retry-After": str(self.retry_after)}
                return gateway_error(429, "APIGW.0308", THROTTLED_MESSAGE, request_id, headers)
            case FaultKind.DIS_ERROR:
                return dis_error(self.http_status, self.code, self.message)
            case FaultKind.GATEWAY_ERROR:
                return gateway_error(self.http_status, self.code, self.message, request_id)
            case FaultKind.MALFORMED:
                body = MALFORMED_BODY if self.body is None else self.body
                html = body.lstrip().startswith(b"<")
                content_type = "text/html" if html else DIS_CONTENT_TYPE
                return Reply(self.http_status, body, {"Content-Type": content_type})
            case FaultKind.LATENCY | FaultKind.DROP:
                return None


@dataclass(frozen=True, slots=True)
class Decision:
    """What the faults do to one call: wait ``delay`` seconds, then ``fault`` (if any) answers."""

    delay: float = 0.0
    fault: Fault | None = None


@dataclass(slots=True)
class _Armed:
    fault: Fault
    remaining: int | None


class FaultPlan:
    """The injected faults with what is left of their counts, safe to use from any thread."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        """Arm ``fault``; without a count or a fraction it fires once."""
        remaining = 1 if fault.count is None and fault.fraction is None else fault.count
        with self._lock:
            self._armed.append(_Armed(fault, remaining))

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    def decide(self, method: str, path: str) -> Decision:
        """Draw the faults for one call and use up their counts."""
        delay = 0.0
        chosen: Fault | None = None
        with self._lock:
            for armed in self._armed:
                fault = armed.fault
                is_latency = fault.kind is FaultKind.LATENCY
                if not fault.matches(method, path) or (chosen is not None and not is_latency):
                    continue
                if fault.fraction is not None and self._rng.random() >= fault.fraction:
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                if is_latency:
                    delay += fault.seconds
                else:
                    chosen = fault
            self._armed = [armed for armed in self._armed if armed.remaining != 0]
        return Decision(delay, chosen)


def _when(when: When) -> When:
    """Pass the matching options through, with the method upper-cased for comparison."""
    method = when.get("method")
    return {**when, "method": method.upper()} if method else when


def _status_reply(status: int, request_id: str) -> Reply:
    if status == 500:
        return dis_error(500, "DIS.5000", "System error.")
    if status in (502, 503):
        return gateway_error(status, "APIGW.0202", "Backend unavailable", request_id)
    if status == 504:
        return gateway_error(status, "APIGW.0203", "Backend timeout", request_id)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return gateway_error(status, "APIGW.0201", phrase, request_id)
