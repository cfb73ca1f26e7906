"""Settings: the configuration contract of product.md, its defaults, fallbacks and errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from tests.conftest import is_bot_variable

REQUIRED = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "DIS_ENDPOINT": "https://dis.eu-de.otc.t-systems.com",
    "DIS_PROJECT_ID": "0123456789abcdef0123456789abcdef",
    "DIS_ACCESS_KEY": "AKEXAMPLE",
    "DIS_SECRET_KEY": "SKEXAMPLE",
}


@pytest.fixture(autouse=True)
def folder_without_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Each test runs in a folder without `.env` (conftest already cleared the environment)."""
    monkeypatch.chdir(tmp_path)


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Set the required variables plus ``values``."""
    for name, value in {**REQUIRED, **values}.items():
        monkeypatch.setenv(name, value)


def refusal(monkeypatch: pytest.MonkeyPatch, **values: str) -> ConfigError:
    """The error loading the settings raises with the required variables plus ``values``."""
    set_env(monkeypatch, **values)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value


def test_defaults_follow_the_contract(monkeypatch):
    """With only the required variables set, every default is the one product.md gives."""
    set_env(monkeypatch)
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.dumptask_allowed_channels == []
    assert settings.dumptask_requesters == []
    assert settings.dumptask_approvers == []
    assert settings.dumptask_approvals_required == 1
    assert settings.dumptask_allow_self_approval is False
    assert settings.dumptask_approval_ttl_seconds == 900
    assert settings.dumptask_allowed_streams == []
    assert settings.database_url == "sqlite:///dumptask.db"
    assert (settings.host, settings.port) == ("0.0.0.0", 3000)  # noqa: S104
    assert settings.dis_security_token is None
    assert settings.slack_signing_secret is None


def test_lists_are_comma_separated(monkeypatch):
    """Comma-separated lists are split and trimmed, empty items ignored."""
    set_env(
        monkeypatch,
        DUMPTASK_APPROVERS="U0BOB, S0LEADS,,",
        DUMPTASK_ALLOWED_CHANNELS="C0INCIDENT",
        DUMPTASK_ALLOWED_STREAMS="orders-*, clicks-stream",
    )
    settings = load_settings()
    assert settings.dumptask_approvers == ["U0BOB", "S0LEADS"]
    assert settings.dumptask_allowed_channels == ["C0INCIDENT"]
    assert settings.dumptask_allowed_streams == ["orders-*", "clicks-stream"]


def test_huaweicloud_sdk_variables_are_fallbacks(monkeypatch):
    """The official SDKs' HUAWEICLOUD_SDK_* variables stand in for the DIS_* ones."""
    set_env(monkeypatch)
    for name in ("DIS_PROJECT_ID", "DIS_ACCESS_KEY", "DIS_SECRET_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "fallbackproject")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "FALLBACKAK")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "FALLBACKSK")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TOKEN")
    settings = load_settings()
    assert settings.dis_project_id == "fallbackproject"
    assert settings.dis_access_key == "FALLBACKAK"
    assert settings.dis_secret_key.get_secret_value() == "FALLBACKSK"
    assert settings.dis_security_token is not None
    assert settings.dis_security_token.get_secret_value() == "TOKEN"


def test_dis_variables_win_over_fallbacks(monkeypatch):
    """When both are set, DIS_* is the one used."""
    set_env(monkeypatch, HUAWEICLOUD_SDK_AK="OTHER")
    assert load_settings().dis_access_key == "AKEXAMPLE"


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    """An optional .env file in the working directory provides values."""
    (tmp_path / ".env").write_text(
        "\n".join(f"{k}={v}" for k, v in REQUIRED.items()) + "\nPORT=4000\n"
    )
    assert load_settings().port == 4000


def test_secrets_do_not_show_in_repr(monkeypatch):
    """Printing the settings never shows the secret key or the token."""
    set_env(monkeypatch, DIS_SECURITY_TOKEN="TOPSECRETTOKEN")
    shown = repr(load_settings()) + str(load_settings())
    assert "SKEXAMPLE" not in shown
    assert "TOPSECRETTOKEN" not in shown
    assert "xoxb-1-2-abc" not in shown


def test_loopback_http_endpoint_is_allowed(monkeypatch):
    """Plain http is accepted for a stand-in on loopback."""
    for endpoint in ("http://127.0.0.1:8000", "http://localhost:9", "http://[::1]:80"):
        set_env(monkeypatch, DIS_ENDPOINT=endpoint)
        assert load_settings().dis_endpoint == endpoint


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DIS_ENDPOINT", "http://dis.example.com", "DIS_ENDPOINT: expected an https:// URL"),
        ("DIS_ENDPOINT", "ftp://dis.example.com", "DIS_ENDPOINT: expected an https:// URL"),
        ("DIS_ENDPOINT", "not a url", "DIS_ENDPOINT: expected an https:// URL"),
        (
            "DUMPTASK_APPROVERS",
            "U0BOB,bob",
            "DUMPTASK_APPROVERS: expected user ids (U...) or user-group ids (S...), got 'bob'",
        ),
        ("DUMPTASK_REQUESTERS", "C0CHANNEL", "DUMPTASK_REQUESTERS: expected user ids (U...)"),
        (
            "DUMPTASK_ALLOWED_CHANNELS",
            "incident",
            "DUMPTASK_ALLOWED_CHANNELS: expected channel ids",
        ),
        (
            "DATABASE_URL",
            "mysql://db/x",
            "DATABASE_URL: expected sqlite:///path/to/file.db or postgresql://",
        ),
        ("DUMPTASK_APPROVALS_REQUIRED", "zero", "DUMPTASK_APPROVALS_REQUIRED is invalid"),
        ("DUMPTASK_APPROVALS_REQUIRED", "0", "DUMPTASK_APPROVALS_REQUIRED is invalid"),
        ("DUMPTASK_ALLOW_SELF_APPROVAL", "perhaps", "DUMPTASK_ALLOW_SELF_APPROVAL is invalid"),
        ("PORT", "70000", "PORT is invalid"),
        (
            "SLACK_BOT_TOKEN",
            "xoxp-user-token",
            "SLACK_BOT_TOKEN: expected a bot token starting with xoxb-",
        ),
        (
            "DUMPTASK_ALLOWED_STREAMS",
            "orders stream",
            "DUMPTASK_ALLOWED_STREAMS: expected stream names",
        ),
    ],
)
def test_bad_value_gives_one_clear_line(monkeypatch, variable, value, expected):
    """A bad value is reported on one line that names the variable and what is expected."""
    message = str(refusal(monkeypatch, **{variable: value}))
    assert message.startswith(expected)
    assert "\n" not in message


@pytest.mark.parametrize(
    "variable", ["SLACK_BOT_TOKEN", "DIS_ENDPOINT", "DIS_SECRET_KEY", "DIS_PROJECT_ID"]
)
def test_missing_required_value_is_named(monkeypatch, variable):
    """A missing required variable is named in one line."""
    set_env(monkeypatch)
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigError, match=f"^{variable} is required but not set$"):
        load_settings()


def test_secret_value_never_echoed_in_errors(monkeypatch):
    """An invalid secret is reported without showing it."""
    set_env(monkeypatch, SLACK_BOT_TOKEN="xoxp-very-secret-value")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "very-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DIS_ENDPOINT", "https://me:hunter2@dis.eu-de.otc.t-systems.com", "without a user name"),
        ("DIS_ENDPOINT", "http://me:hunter2@127.0.0.1:8000", "without a user name"),
        ("DIS_ENDPOINT", "me:hunter2@dis.eu-de.otc.t-systems.com", "without a user name"),
        ("SLACK_API_URL", "https://me:hunter2@slack.example.com/api/", "without a user name"),
        ("DIS_ENDPOINT", "https://dis.example.com/?X-Auth-Token=hunter2", "query or fragment"),
        ("DIS_ENDPOINT", "http://dis.example.com#hunter2", "query or fragment"),
        ("SLACK_API_URL", "slack.example.com/api/?token=hunter2", "query or fragment"),
    ],
)
def test_url_settings_never_echo_credentials(monkeypatch, variable, value, expected):
    """A URL with a user name and password is refused; no error echoes them, a query or fragment."""
    set_env(monkeypatch, **{variable: value})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}: expected")
    assert expected in message
    assert "hunter2" not in message and "me:" not in message


def test_cli_stops_with_one_line_and_no_traceback(monkeypatch, tmp_path):
    """`dumptask-bot serve` with a bad endpoint exits 2 printing one line, no traceback."""
    env = {**REQUIRED, "DIS_ENDPOINT": "http://dis.example.com", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]]
    assert lines[0].startswith(
        "dumptask-bot: configuration error: DIS_ENDPOINT: expected an https:// URL"
    )


def test_cli_requires_signing_secret_for_serve(tmp_path):
    """`serve` without SLACK_SIGNING_SECRET stops with a line naming it."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={**REQUIRED, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_can_be_built_from_code():
    """Tests and the demo build Settings from code without touching the environment."""
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in REQUIRED.items()})
    assert settings.dis_access_key == "AKEXAMPLE"


# (variable, value, accepted); every row is checked on its own, on top of valid required values.
VALIDATION_TABLE = [
    ("SLACK_BOT_TOKEN", "xoxb-1-2-abc", True),
    ("SLACK_BOT_TOKEN", "xoxp-1-2-user", False),
    ("SLACK_BOT_TOKEN", "xapp-1-A1-app", False),
    ("SLACK_BOT_TOKEN", "xoxa-2-legacy", False),
    ("SLACK_BOT_TOKEN", "xoxb", False),
    ("SLACK_BOT_TOKEN", "XOXB-1-2-abc", False),
    ("SLACK_BOT_TOKEN", "", False),
    ("SLACK_APP_TOKEN", "xapp-1-A1-app", True),
    ("SLACK_APP_TOKEN", "xoxb-1-2-abc", False),
    ("SLACK_APP_TOKEN", "xoxp-1-2-user", False),
    ("SLACK_APP_TOKEN", "", False),
    ("DUMPTASK_REQUESTERS", "U0ALICE", True),
    ("DUMPTASK_REQUESTERS", "W0ENTERPRISE", True),
    ("DUMPTASK_REQUESTERS", "S0ONCALL", True),
    ("DUMPTASK_REQUESTERS", "U0ALICE, S0ONCALL, W0ENTERPRISE", True),
    ("DUMPTASK_REQUESTERS", "C0INCIDENT", False),
    ("DUMPTASK_REQUESTERS", "G0PRIVATE", False),
    ("DUMPTASK_REQUESTERS", "u0alice", False),
    ("DUMPTASK_REQUESTERS", "U0alice", False),
    ("DUMPTASK_REQUESTERS", "@alice", False),
    ("DUMPTASK_REQUESTERS", "<@U0ALICE>", False),
    ("DUMPTASK_REQUESTERS", "U", False),
    ("DUMPTASK_REQUESTERS", "U0ALICE,U0 BOB", False),
    ("DUMPTASK_APPROVERS", "U0BOB", True),
    ("DUMPTASK_APPROVERS", "W0BOB", True),
    ("DUMPTASK_APPROVERS", "S0LEADS", True),
    ("DUMPTASK_APPROVERS", "C0INCIDENT", False),
    ("DUMPTASK_APPROVERS", "s0leads", False),
    ("DUMPTASK_APPROVERS", "U0BOB;U0CAROL", False),
    ("DUMPTASK_APPROVERS", "oncall-leads", False),
    ("DUMPTASK_ALLOWED_CHANNELS", "C0INCIDENT", True),
    ("DUMPTASK_ALLOWED_CHANNELS", "G0PRIVATE", True),
    ("DUMPTASK_ALLOWED_CHANNELS", "C0INCIDENT,G0PRIVATE", True),
    ("DUMPTASK_ALLOWED_CHANNELS", "U0ALICE", False),
    ("DUMPTASK_ALLOWED_CHANNELS", "S0LEADS", False),
    ("DUMPTASK_ALLOWED_CHANNELS", "c0incident", False),
    ("DUMPTASK_ALLOWED_CHANNELS", "#incident", False),
    ("DIS_ENDPOINT", "https://dis.eu-de.otc.t-systems.com", True),
    ("DIS_ENDPOINT", "https://dis.cn-north-4.myhuaweicloud.com/", True),
    ("DIS_ENDPOINT", "http://127.0.0.1:8000", True),
    ("DIS_ENDPOINT", "http://127.0.0.2:8000", True),
    ("DIS_ENDPOINT", "http://localhost:9", True),
    ("DIS_ENDPOINT", "http://LOCALHOST", True),
    ("DIS_ENDPOINT", "http://[::1]:80", True),
    ("DIS_ENDPOINT", "http://dis.eu-de.otc.t-systems.com", False),
    ("DIS_ENDPOINT", "http://10.0.0.1", False),
    ("DIS_ENDPOINT", "http://0.0.0.0:8000", False),
    ("DIS_ENDPOINT", "http://localhost.example.com", False),
    ("DIS_ENDPOINT", "http://127.0.0.1.nip.io", False),
    ("DIS_ENDPOINT", "ftp://dis.example.com", False),
    ("DIS_ENDPOINT", "dis.example.com", False),
    ("DIS_ENDPOINT", "https://", False),
    ("DIS_ENDPOINT", "https://dis.example.com/?x=1", False),
    ("DIS_ENDPOINT", "https://dis.example.com/#frag", False),
    ("DATABASE_URL", "sqlite:///dumptask.db", True),
    ("DATABASE_URL", "sqlite+aiosqlite:///dumptask.db", True),
    ("DATABASE_URL", "postgresql://bot@db/dumptask", True),
    ("DATABASE_URL", "postgresql+psycopg://bot@db/dumptask", True),
    ("DATABASE_URL", "postgres://bot@db/dumptask", True),
    ("DATABASE_URL", "mysql://bot@db/dumptask", False),
    ("DATABASE_URL", "http://db/dumptask", False),
    ("DATABASE_URL", "dumptask.db", False),
    ("DATABASE_URL", "", False),
    ("METRICS_PORT", "9100", True),
    ("METRICS_PORT", "70000", False),
    ("METRICS_PORT", "metrics", False),
    ("DUMPTASK_AUDIT_CHANNEL", "C0AUDIT", True),
    ("DUMPTASK_AUDIT_CHANNEL", "G0AUDIT", True),
    ("DUMPTASK_AUDIT_CHANNEL", "#audit", False),
    ("DUMPTASK_AUDIT_CHANNEL", "U0ALICE", False),
    ("DUMPTASK_AUDIT_CHANNEL", "C0AUDIT,C0MORE", False),
]


@pytest.mark.parametrize(("variable", "value", "accepted"), VALIDATION_TABLE)
def test_validation_table(monkeypatch, variable, value, accepted):
    """Token prefixes, id shapes, endpoint and database schemes: accepted, or refused by name."""
    if accepted:
        set_env(monkeypatch, **{variable: value})
        load_settings()
        return
    message = str(refusal(monkeypatch, **{variable: value}))
    assert message.startswith((f"{variable}: ", f"{variable} is "))
    assert "\n" not in message


SECRETS = [
    ("SLACK_BOT_TOKEN", "xoxp-1-2-hunter2secret"),
    ("SLACK_BOT_TOKEN", "xapp-1-A1-hunter2secret"),
    ("SLACK_BOT_TOKEN", "hunter2secret"),
    ("SLACK_APP_TOKEN", "xoxb-1-2-hunter2secret"),
    ("SLACK_APP_TOKEN", "hunter2secret"),
]


@pytest.mark.parametrize(("variable", "value"), SECRETS)
def test_refused_token_is_named_but_never_echoed(monkeypatch, variable, value):
    """A refused token's variable is named; neither the token nor any part of it is shown."""
    error = refusal(monkeypatch, **{variable: value})
    assert str(error).startswith(variable)
    assert "hunter2" not in str(error)
    assert "hunter2" not in repr(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_no_variable_the_bot_reads_reaches_a_test():
    """No variable the bot reads is set during a test, whatever the shell exported."""
    assert [name for name in os.environ if is_bot_variable(name)] == []


@pytest.mark.parametrize(
    ("name", "cleared"),
    [
        ("SLACK_BOT_TOKEN", True),
        ("DIS_ENDPOINT", True),
        ("DUMPTASK_ALLOWED_CHANNELS", True),
        ("HUAWEICLOUD_SDK_AK", True),
        ("DATABASE_URL", True),
        ("PORT", True),
        ("LOG_LEVEL", True),
        ("SHUTDOWN_GRACE_SECONDS", True),
        ("DUMPTASK_TEST_POSTGRES_URL", False),
        ("CI", False),
        ("PATH", False),
    ],
)
def test_the_bot_variables_are_told_from_the_rest(name, cleared):
    """Every prefix and name the bot reads is cleared; the suite's own variables are kept."""
    assert is_bot_variable(name) is cleared


AUDIT_SECRET = "a-shared-secret-of-some-length"


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://audit.example.com/dumptask", True),
        ("http://127.0.0.1:8443/audit", True),
        ("http://audit.example.com/dumptask", False),
        ("https://audit.example.com/dumptask?token=hunter2", False),
        ("https://me:hunter2@audit.example.com/", False),
    ],
)
def test_audit_webhook_url_is_https_without_credentials(monkeypatch, url, accepted):
    """The audit stream goes over https (http only to loopback), with no key in its URL."""
    values = {"DUMPTASK_AUDIT_WEBHOOK_URL": url, "DUMPTASK_AUDIT_WEBHOOK_SECRET": AUDIT_SECRET}
    if accepted:
        set_env(monkeypatch, **values)
        assert load_settings().dumptask_audit_webhook_url == url
        return
    message = str(refusal(monkeypatch, **values))
    assert message.startswith("DUMPTASK_AUDIT_WEBHOOK_URL: ")
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"DUMPTASK_AUDIT_WEBHOOK_URL": "https://audit.example.com/"}, "SECRET"),
        ({"DUMPTASK_AUDIT_WEBHOOK_SECRET": AUDIT_SECRET}, "URL"),
    ],
)
def test_audit_webhook_url_and_secret_go_together(monkeypatch, values, missing):
    """One of the pair alone stops start-up with one line naming the missing one."""
    message = str(refusal(monkeypatch, **values))
    assert f"DUMPTASK_AUDIT_WEBHOOK_{missing} is required when" in message
    assert "\n" not in message
    assert AUDIT_SECRET not in message


def test_a_short_audit_webhook_secret_is_refused_unshown(monkeypatch):
    """A guessable secret is refused, and never echoed."""
    message = str(
        refusal(
            monkeypatch,
            DUMPTASK_AUDIT_WEBHOOK_URL="https://audit.example.com/",
            DUMPTASK_AUDIT_WEBHOOK_SECRET="hunter2",
        )
    )
    assert message.startswith("DUMPTASK_AUDIT_WEBHOOK_SECRET: expected a secret of at least 16")
    assert "hunter2" not in message
