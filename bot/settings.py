"""The whole configuration contract of the bot, read once from the environment.

Nothing else in the package reads ``os.environ``: ``Settings`` is built once by the entry point
and handed down. Every variable of ``product.md``'s table is here, with its defaults and the
``HUAWEICLOUD_SDK_*`` fallbacks the official SDKs use, so that an operator who already has those
set does not need to repeat them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.logs import LOG_FORMATS, LOG_LEVELS

USER_OR_GROUP_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
STREAM_PATTERN = re.compile(r"^[A-Za-z0-9_\-*?\[\]!]{1,64}$")
LOOPBACK_HOSTS = {"localhost"}
AUDIT_WEBHOOK_SECRET_MIN_LENGTH = 16
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")

CommaList = Annotated[list[str], NoDecode]


def split_comma_list(value: Any) -> Any:
    """Turn ``"a, b,,c"`` into ``["a", "b", "c"]``; lists pass through untouched."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def is_loopback_host(host: str) -> bool:
    """Tell whether ``host`` names this machine, the only place plain HTTP is allowed."""
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_CONFIG = SettingsConfigDict(
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    case_sensitive=False,
    populate_by_name=True,
)


def _check_database_url_value(value: str) -> str:
    scheme = value.split(":", 1)[0].split("+", 1)[0].lower() if ":" in value else ""
    if scheme not in DATABASE_SCHEMES:
        raise ValueError(
            "expected sqlite:///path/to/file.db or postgresql://user@host/db, "
            f"got a {scheme or 'missing'} scheme"
        )
    return value


class DatabaseSettings(BaseSettings):
    """Just the database, for the commands that need nothing else (``migrate``)."""

    model_config = _CONFIG

    database_url: str = "sqlite:///dumptask.db"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return _check_database_url_value(value)


def refuse_credentials(url: str, instead: str) -> None:
    """Refuse a URL holding a user name or password (``user:secret@``), without echoing it."""
    if "@" in url:
        raise ValueError(
            f"expected a URL without a user name or password ({instead}); "
            "remove everything up to the @ from the host"
        )


def shown_url(url: str) -> str:
    """A URL as an error message may echo it: without a query or fragment, which can hold keys.

    Callers refuse URLs with a user name or password first, so none is left to echo.
    """
    kept, *cut = re.split(r"[?#]", url.strip(), maxsplit=1)
    return repr(kept) + (" followed by a query or fragment (not shown)" if cut else "")


def require_https_or_loopback(value: str, example: str) -> None:
    """Refuse anything but ``https://`` (or ``http://`` to this machine, for stand-ins).

    A query is refused too: the URL is logged with each call, and a query may hold a key.
    """
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    secure = parts.scheme == "https" and host
    local = parts.scheme == "http" and is_loopback_host(host)
    if not (secure or local) or parts.query or parts.fragment:
        raise ValueError(
            f"expected an https:// URL such as {example} "
            f"(http:// only to 127.0.0.1, localhost or [::1]), got {shown_url(value)}"
        )


class LogSettings(BaseSettings):
    """How the bot logs; every command reads these first, before anything can be logged."""

    model_config = _CONFIG

    log_format: str = "text"
    log_level: str = "INFO"

    @field_validator("log_format", "log_level")
    @classmethod
    def _check_choice(cls, value: str, info: ValidationInfo) -> str:
        """Accept any case; refuse anything else, listing what is allowed."""
        allowed = LOG_FORMATS if info.field_name == "log_format" else LOG_LEVELS
        for choice in allowed:
            if choice.casefold() == value.strip().casefold():
                return choice
        raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")


class Settings(LogSettings):
    """Every setting of the bot; the field names are the environment variable names."""

    model_config = _CONFIG

    slack_bot_token: SecretStr
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    dis_endpoint: str
    dis_project_id: str = Field(
        validation_alias=AliasChoices("DIS_PROJECT_ID", "HUAWEICLOUD_SDK_PROJECT_ID"),
    )
    dis_access_key: str = Field(
        validation_alias=AliasChoices("DIS_ACCESS_KEY", "HUAWEICLOUD_SDK_AK"),
    )
    dis_secret_key: SecretStr = Field(
        validation_alias=AliasChoices("DIS_SECRET_KEY", "HUAWEICLOUD_SDK_SK"),
    )
    dis_security_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DIS_SECURITY_TOKEN", "HUAWEICLOUD_SDK_SECURITY_TOKEN"),
    )
    dis_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    dis_retry_attempts: int = Field(default=4, ge=1, le=20)
    dis_retry_total_seconds: float = Field(default=30.0, gt=0, le=600)
    dis_auth_cooldown_seconds: float = Field(default=300.0, ge=0, le=3600)

    dumptask_allowed_channels: CommaList = []
    dumptask_requesters: CommaList = []
    dumptask_approvers: CommaList = []
    dumptask_approvals_required: int = Field(default=1, ge=1, le=10)
    dumptask_allow_self_approval: bool = False
    dumptask_approval_ttl_seconds: int = Field(default=900, ge=30, le=7 * 24 * 3600)
    dumptask_allowed_streams: CommaList = []
    dumptask_verify_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    dumptask_verify_interval_seconds: float = Field(default=2.0, gt=0, le=60)

    dumptask_notify_approvers: Literal["mention", "dm", "off"] = "mention"
    dumptask_remind_after_seconds: int | None = Field(default=None, ge=0, le=7 * 24 * 3600)
    dumptask_escalate_to: CommaList = []
    dumptask_allow_seconds: bool = False
    dumptask_lease_seconds: float = Field(default=15.0, ge=1, le=600)
    shutdown_grace_seconds: float = Field(default=25.0, ge=0, le=600)
    # serve: the jobs (DIS calls, cards, outcomes) in a worker process beside the one that acks
    # Slack ("process"), or in the same one ("inline"). See bot.worker.
    dumptask_worker: Literal["process", "inline"] = "process"

    database_url: str = "sqlite:///dumptask.db"
    host: str = "0.0.0.0"  # noqa: S104 - the bot listens on all interfaces behind a load balancer
    port: int = Field(default=3000, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)

    dumptask_audit_channel: str | None = None
    dumptask_audit_webhook_url: str | None = None
    dumptask_audit_webhook_secret: SecretStr | None = None

    @field_validator(
        "dumptask_allowed_channels",
        "dumptask_requesters",
        "dumptask_approvers",
        "dumptask_allowed_streams",
        "dumptask_escalate_to",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return split_comma_list(value)

    @field_validator("dumptask_requesters", "dumptask_approvers", "dumptask_escalate_to")
    @classmethod
    def _check_user_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not USER_OR_GROUP_ID.match(item):
                raise ValueError(f"expected user ids (U...) or user-group ids (S...), got {item!r}")
        return value

    @field_validator("dumptask_allowed_channels")
    @classmethod
    def _check_channel_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not CHANNEL_ID.match(item):
                raise ValueError(f"expected channel ids (C... or G...), got {item!r}")
        return value

    @field_validator("dumptask_audit_channel")
    @classmethod
    def _check_audit_channel(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not CHANNEL_ID.match(value.strip()):
            raise ValueError(f"expected a channel id (C... or G...), got {value!r}")
        return value.strip()

    @field_validator("dumptask_audit_webhook_url")
    @classmethod
    def _check_audit_webhook_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        refuse_credentials(value, "the stream is signed with DUMPTASK_AUDIT_WEBHOOK_SECRET")
        require_https_or_loopback(value, "https://audit.example.com/dumptask")
        return value.strip()

    @field_validator("dumptask_audit_webhook_secret")
    @classmethod
    def _check_audit_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < AUDIT_WEBHOOK_SECRET_MIN_LENGTH:
            raise ValueError(
                f"expected a secret of at least {AUDIT_WEBHOOK_SECRET_MIN_LENGTH} characters"
            )
        return value

    @model_validator(mode="after")
    def _audit_webhook_pair(self) -> Settings:
        """The audit stream needs both its URL and its secret; one alone is a mistake."""
        url, secret = self.dumptask_audit_webhook_url, self.dumptask_audit_webhook_secret
        if (url is None) != (secret is None):
            missing, present = ("SECRET", "URL") if secret is None else ("URL", "SECRET")
            raise ValueError(
                f"DUMPTASK_AUDIT_WEBHOOK_{missing} is required when "
                f"DUMPTASK_AUDIT_WEBHOOK_{present} is set (the audit stream needs both)"
            )
        return self

    @field_validator("dumptask_allowed_streams")
    @classmethod
    def _check_stream_patterns(cls, value: list[str]) -> list[str]:
        for item in value:
            if not STREAM_PATTERN.match(item):
                raise ValueError(
                    "expected stream names or glob patterns of A-Z a-z 0-9 _ - * ? [ ], "
                    f"got {item!r}"
                )
        return value

    @field_validator("dis_endpoint")
    @classmethod
    def _check_dis_endpoint(cls, value: str) -> str:
        refuse_credentials(value, "DIS authenticates with DIS_ACCESS_KEY and DIS_SECRET_KEY")
        require_https_or_loopback(value, "https://dis.cn-north-4.myhuaweicloud.com")
        return value.strip().rstrip("/")

    @field_validator("slack_api_url")
    @classmethod
    def _check_slack_api_url(cls, value: str) -> str:
        refuse_credentials(value, "the bot authenticates with SLACK_BOT_TOKEN")
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                f"expected a URL such as https://slack.com/api/, got {shown_url(value)}"
            )
        return value.strip().rstrip("/") + "/"

    @field_validator("dis_project_id")
    @classmethod
    def _check_project_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", value.strip()):
            raise ValueError(f"expected a project id of letters and digits, got {value!r}")
        return value.strip()

    @field_validator("dis_access_key")
    @classmethod
    def _check_access_key(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected an access key (AK), got an empty value")
        return value.strip()

    @field_validator("slack_bot_token")
    @classmethod
    def _check_bot_token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("expected a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _check_app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("expected an app-level token starting with xapp-")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        return _check_database_url_value(value)


def describe_validation_error(error: ValidationError) -> str:
    """Render pydantic's errors as one line per variable, naming it the way the operator set it.

    The input value is never echoed by this function: validators that may show it say so in
    their own message, and secrets are never among them.
    """
    lines = []
    for item in error.errors():
        variable = str(item["loc"][0]).upper() if item["loc"] else "configuration"
        if item["type"] == "missing":
            message = "is required but not set"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            message = message if item["type"] == "value_error" else f"is invalid: {message}"
        lines.append(
            f"{variable} {message}" if message.startswith("is ") else f"{variable}: {message}"
        )
    return "\n".join(lines)


Loaded = TypeVar("Loaded", bound=BaseSettings)


def _load(kind: type[Loaded], overrides: dict[str, Any]) -> Loaded:
    """Build ``kind`` from the environment, ``.env`` and ``overrides``, or raise ``ConfigError``.

    ``ConfigError`` carries one readable line per bad variable, so the entry point can print it
    and exit without a traceback.
    """
    try:
        return kind(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def load_database_settings(**overrides: Any) -> DatabaseSettings:
    """``DATABASE_URL`` alone, from the environment and ``.env``, or a ``ConfigError``."""
    return _load(DatabaseSettings, overrides)


def load_log_settings(**overrides: Any) -> LogSettings:
    """``LOG_FORMAT`` and ``LOG_LEVEL`` alone, from the environment and ``.env``."""
    return _load(LogSettings, overrides)


def load_settings(**overrides: Any) -> Settings:
    """Build ``Settings`` from the environment, ``.env`` and ``overrides``, or fail clearly."""
    return _load(Settings, overrides)
