"""Slack as a client of the bot: the requests Slack sends, built and signed as Slack does.

Pure functions: the slash command form, the ``block_actions`` payload of a button click, the
Socket Mode envelope around either, and the ``v0`` signature headers. ``SlackStandIn`` fills
them from its workspace and sends them over HTTP.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.sim.slack_api import Channel, Message, Team, User, find_button

__all__ = [
    "EnvelopeKind",
    "block_actions_payload",
    "click_body",
    "command_body",
    "signature_headers",
    "slash_command_fields",
    "socket_mode_envelope",
]

JsonDict = dict[str, Any]
EnvelopeKind = Literal["slash_commands", "interactive"]
FORM = "application/x-www-form-urlencoded"


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
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": team.id},
        "api_app_id": app_id,
        "token": verification_token,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": message.is_ephemeral,
        },
        "trigger_id": trigger_id,
        "team": {"id": team.id, "domain": team.domain},
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


def socket_mode_envelope(kind: EnvelopeKind, payload: JsonDict) -> JsonDict:
    """The envelope Slack wraps a payload in over a Socket Mode WebSocket.

    Only slash commands accept a response payload in the ack; clicks do not.
    """
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": kind,
        "accepts_response_payload": kind == "slash_commands",
        "payload": payload,
    }


def command_body(fields: dict[str, str]) -> bytes:
    """A slash command as it goes over HTTP: the fields, form-encoded."""
    return urlencode(fields).encode()


def click_body(payload: JsonDict) -> bytes:
    """A click as it goes over HTTP: one ``payload`` form field holding the JSON."""
    return urlencode({"payload": json.dumps(payload)}).encode()


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
