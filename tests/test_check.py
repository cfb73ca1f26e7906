"""`dumptask-bot check`: one verdict line per item, against the stand-ins over loopback."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import BOT_TOKEN, DIS_AK, DIS_SK, PROJECT, STREAM


def run_check(tmp_path, dis, slack, *args: str, **env: str):
    values = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "DIS_ENDPOINT": dis.url,
        "DIS_PROJECT_ID": PROJECT,
        "DIS_ACCESS_KEY": DIS_AK,
        "DIS_SECRET_KEY": DIS_SK,
        "DIS_RETRY_ATTEMPTS": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/check.db",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", *args],
        env=values,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_all_good(tmp_path, dis, slack):
    """With everything right, every line says OK and the exit status is 0."""
    result = run_check(tmp_path, dis, slack, STREAM)
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in lines] == ["OK"] * 4
    assert any("orders-archive (PAUSED)" in line for line in lines)
    assert any("auth.test" in line and "U0" in line for line in lines)


def test_wrong_secret_key_is_explained(tmp_path, dis, slack):
    """A wrong SK fails the DIS line with APIGW.0301 and what to do; the SK is not shown."""
    result = run_check(tmp_path, dis, slack, STREAM, DIS_SECRET_KEY="WRONGSECRETVALUE")
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert "APIGW.0301" in line
    assert "AK/SK" in line
    assert "WRONGSECRETVALUE" not in result.stdout + result.stderr


def test_bad_slack_token_is_explained(tmp_path, dis, slack):
    """A token Slack refuses fails the auth.test line, naming the variable to check."""
    result = run_check(tmp_path, dis, slack, STREAM, SLACK_BOT_TOKEN="xoxb-not-the-right-one")
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert "invalid_auth" in line
    assert "SLACK_BOT_TOKEN" in line


def test_unknown_stream_is_explained(tmp_path, dis, slack):
    """A stream DIS does not know fails with DIS.4301."""
    result = run_check(tmp_path, dis, slack, "no-such-stream")
    assert "DIS.4301" in result.stdout
    assert result.returncode == 1


def test_security_token_in_a_rejected_signature_is_not_printed(tmp_path, dis, slack):
    """The DIS line quotes the gateway's 0301 message, but never the security token in it."""
    token = "CHECKTOKEN-0123456789abcdef"
    result = run_check(
        tmp_path, dis, slack, STREAM, DIS_SECURITY_TOKEN=token, DIS_SECRET_KEY="WRONGSECRETVALUE"
    )
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert "APIGW.0301" in line and "x-security-token:[redacted]" in line
    assert token not in result.stdout + result.stderr
