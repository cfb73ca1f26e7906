"""app-manifest.yml is a complete Slack app manifest, valid against Slack's public schema."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT.parent / "shared" / "data" / "slack" / "manifest.schema.1.0.0.json"


@pytest.fixture
def manifest() -> dict:
    return yaml.safe_load((ROOT / "app-manifest.yml").read_text())


def test_manifest_validates_against_slack_schema(manifest):
    """The manifest passes Slack's manifest v1 JSON Schema (kept in ../shared)."""
    if not SCHEMA.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Slack's manifest schema is missing at {SCHEMA}")
        pytest.skip(f"Slack's manifest schema is not beside this checkout ({SCHEMA})")
    jsonschema.validate(manifest, json.loads(SCHEMA.read_text()))


def test_manifest_declares_command_interactivity_and_scopes(manifest):
    """The slash command, interactivity and every scope the bot uses are declared."""
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/dumptask"
    assert command["description"]
    assert command["usage_hint"]
    assert command["url"].endswith("/slack/events")
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert set(manifest["oauth_config"]["scopes"]["bot"]) >= {
        "commands",
        "chat:write",
        "usergroups:read",
    }
    assert manifest["features"]["bot_user"]["display_name"]
    assert manifest["settings"]["token_rotation_enabled"] is False


def test_procfile_runs_serve():
    """The Procfile's web process runs the production HTTP server."""
    assert (ROOT / "Procfile").read_text().strip() == "web: dumptask-bot serve"
