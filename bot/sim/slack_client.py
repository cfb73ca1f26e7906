"""Slack as a client of the bot: the requests Slack sends, built and signed as Slack does.

Pure functions: the slash command form; the interaction payloads (a button click's
``block_actions``, a global ``shortcut``, and in a modal ``view_submission``, ``view_closed``,
``block_suggestion`` and ``block_actions`` with a ``view`` container); the Socket Mode envelope
around any of them; and the ``v0`` signature headers. ``SlackStandIn`` fills them from its
workspace and sends them over HTTP.

The shapes follow the payloads in bolt-python's ``tests/scenario_tests`` (``test_view_submission``,
``test_view_closed``, ``test_block_suggestion``, ``test_shortcut``, ``test_block_actions``) and
Slack's interaction payload reference (docs.slack.dev ``reference/interaction-payloads``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.sim.slack_api import Channel, Message, Team, User, find_button

__all__ = [
    "EnvelopeKind",
    "Installation",
    "block_actions_payload",
    "block_suggestion_payload",
    "click_body",
    "command_body",
    "shortcut_payload",
    "signature_headers",
    "slash_command_fields",
    "socket_mode_envelope",
    "view_action_payload",
    "view_closed_payload",
    "view_submission_payload",
]

JsonDict = dict[str, Any]
EnvelopeKind = Literal["slash_commands", "interactive"]
FORM = "application/x-www-form-urlencoded"
# Interactions whose acknowledgement carries an answer Slack uses (response_action, options).
ANSWERED_INTERACTIONS = frozenset({"view_submission", "block_suggestion"})


def slash_command_fields(
    *,
    team: Team,
    app_id: str,
    verification_token: str,
    user: User,
    channel: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command, in the order Slack sends them."""
    return {
        "token": verification_token,
        "team_id": team.id,
        "team_domain": team.domain,
        "channel_id": channel.id,
        "channel_name": channel.name,
        "user_id": user.id,
        "user_name": user.name,
        "command": command,
        "text": text,
        "api_app_id": app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def block_actions_payload(
    *,
    team: Team,
    app_id: str,
    verification_token: str,
    user: User,
    channel: Channel,
    message: Message,
    action_id: str,
    value: str | None,
    response_url: str,
    trigger_id: str,
    action_ts: str,
) -> JsonDict:
    """The ``block_actions`` payload of a click on a button of ``message``.

    ``block_id``, the button text and style come from the message as stored; ``value``
    replaces the button's own when given. A click on an ephemeral message carries no
    ``message``, as at Slack.
    """
    block_id, button = find_button(message.blocks, action_id)
    label = button.get("text") or {}
    action: JsonDict = {
        "action_id": action_id,
        "block_id": block_id,
        "text": {
            "type": "plain_text",
            "text": str(label.get("text", "")),
            "emoji": bool(label.get("emoji", True)),
        },
        "value": button.get("value") if value is None else value,
        "type": str(button.get("type", "button")),
        "action_ts": action_ts,
    }
    if "style" in button:
        action["style"] = button["style"]
    payload: JsonDict = {
        "type": "block_actions",
        "user": _user(user, team),
        "api_app_id": app_id,
        "token": verification_token,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": message.is_ephemeral,
        },
        "trigger_id": trigger_id,
        "team": _team(team),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel.name},
    }
    if not message.is_ephemeral:
        payload["message"] = message.as_payload(team.id)
    payload["state"] = {"values": {}}
    payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


@dataclass(frozen=True, slots=True)
class Installation:
    """The app as installed in a workspace: what every interaction payload names."""

    team: Team
    app_id: str
    verification_token: str


def view_submission_payload(
    app: Installation, user: User, view: JsonDict, *, trigger_id: str
) -> JsonDict:
    """A person submitting a modal: the whole view, its ``state.values`` filled in."""
    return _about(app, "view_submission", user) | {
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": [],
    }


def view_closed_payload(
    app: Installation, user: User, view: JsonDict, *, is_cleared: bool
) -> JsonDict:
    """A person dismissing a modal whose view asked for ``notify_on_close``."""
    return _about(app, "view_closed", user) | {"view": view, "is_cleared": is_cleared}


def block_suggestion_payload(
    app: Installation, user: User, view: JsonDict, *, block_id: str, action_id: str, value: str
) -> JsonDict:
    """An options request: what a person typed in an external select of a modal."""
    return _from_view(app, "block_suggestion", user, view) | {
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
    }


def view_action_payload(
    app: Installation,
    user: User,
    view: JsonDict,
    *,
    block_id: str,
    element: JsonDict,
    state: JsonDict,
    trigger_id: str,
    action_ts: str,
) -> JsonDict:
    """``block_actions`` from inside a modal: a choice in an element that dispatches actions.

    The container is the view; there is no channel, message or response URL. The action
    carries the element's type, ids and its new value as ``state`` holds it (``value``,
    ``selected_option``, ``selected_options``, ``selected_conversation``...).
    """
    action: JsonDict = {"type": element["type"], "action_id": element["action_id"]}
    action["block_id"] = block_id
    action.update({key: value for key, value in state.items() if key != "type"})
    if element["type"] == "button":
        action["text"] = element.get("text")
        action["value"] = element.get("value")
    if "placeholder" in element:
        action["placeholder"] = element["placeholder"]
    action["action_ts"] = action_ts
    return _from_view(app, "block_actions", user, view) | {
        "trigger_id": trigger_id,
        "actions": [action],
    }


def shortcut_payload(
    app: Installation, user: User, *, callback_id: str, trigger_id: str, action_ts: str
) -> JsonDict:
    """A global shortcut (the lightning menu), which carries a trigger id and nothing else."""
    return {
        "type": "shortcut",
        "token": app.verification_token,
        "action_ts": action_ts,
        "team": _team(app.team),
        "user": {"id": user.id, "username": user.name, "team_id": app.team.id},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
    }


def socket_mode_envelope(kind: EnvelopeKind, payload: JsonDict) -> JsonDict:
    """The envelope Slack wraps a payload in over a Socket Mode WebSocket.

    Slash commands, view submissions and options requests accept a response payload in the
    ack (the message, the ``response_action``, the options); clicks and the rest do not.
    """
    answered = kind == "slash_commands" or payload.get("type") in ANSWERED_INTERACTIONS
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": kind,
        "accepts_response_payload": answered,
        "payload": payload,
    }


def command_body(fields: dict[str, str]) -> bytes:
    """A slash command as it goes over HTTP: the fields, form-encoded."""
    return urlencode(fields).encode()


def click_body(payload: JsonDict) -> bytes:
    """An interaction (a click, a submission...) over HTTP: one ``payload`` field of JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


def _about(app: Installation, kind: str, user: User) -> JsonDict:
    """What every interaction with a modal carries: its type, who, the app and workspace."""
    return {
        "type": kind,
        "team": _team(app.team),
        "user": _user(user, app.team),
        "api_app_id": app.app_id,
        "token": app.verification_token,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def _from_view(app: Installation, kind: str, user: User, view: JsonDict) -> JsonDict:
    """An interaction from inside a modal: the view is its container and comes with it."""
    return _about(app, kind, user) | {
        "container": {"type": "view", "view_id": view["id"]},
        "view": view,
    }


def _user(user: User, team: Team) -> JsonDict:
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": team.id}


def _team(team: Team) -> JsonDict:
    return {"id": team.id, "domain": team.domain}


def signature_headers(
    signing_secret: str, body: bytes, timestamp: int, *, signature: str | None = None
) -> dict[str, str]:
    """The headers Slack signs a request with; ``signature`` overrides the computed one."""
    if signature is None:
        signature = SignatureVerifier(signing_secret).generate_signature(
            timestamp=str(timestamp), body=body
        )
    return {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": str(signature),
    }
