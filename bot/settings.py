# Over 400 lines on purpose: every setting the environment gives, and its check, in one place.
"""Typed settings from the environment and `.env`, checked once at start.

Nothing reads the environment at import time: `load_settings()` is called by the entry point,
and tests build `Settings(...)` directly. A missing or malformed setting stops the process with a
sentence naming the variable, never a traceback; secrets are `SecretStr`, never printed.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

from bot import env_file
from bot.logs import LOG_FORMATS, LogFormat
from bot.retention import Retention
from routing.money import currency_code
from storage.db import DatabaseUrlError, check_url

ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "rules": "LEADROUTER_RULES",
    "policy_check_seconds": "LEADROUTER_POLICY_CHECK_SECONDS",
    "webhook_secret": "LEADROUTER_WEBHOOK_SECRET",
    "host": "HOST",
    "port": "PORT",
    "log_level": "LOG_LEVEL",
    "log_format": "LOG_FORMAT",
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_api_url": "SLACK_API_URL",
    "salesforce_instance_url": "SALESFORCE_INSTANCE_URL",
    "hubspot_portal_id": "HUBSPOT_PORTAL_ID",
    "hubspot_app_url": "HUBSPOT_APP_URL",
    "salesforce_access_token": "SALESFORCE_ACCESS_TOKEN",
    "salesforce_username": "SALESFORCE_USERNAME",
    "salesforce_password": "SALESFORCE_PASSWORD",
    "salesforce_security_token": "SALESFORCE_SECURITY_TOKEN",
    "salesforce_client_id": "SALESFORCE_CLIENT_ID",
    "salesforce_client_secret": "SALESFORCE_CLIENT_SECRET",
    "salesforce_domain": "SALESFORCE_DOMAIN",
    "hubspot_access_token": "HUBSPOT_ACCESS_TOKEN",
    "hubspot_client_secret": "HUBSPOT_CLIENT_SECRET",
    "hubspot_api_url": "HUBSPOT_API_URL",
    "hubspot_webhook_url": "HUBSPOT_WEBHOOK_URL",
    "crm_concurrency": "CRM_CONCURRENCY",
    "retention_request_keys_days": "RETENTION_REQUEST_KEYS_DAYS",
    "retention_outbox_days": "RETENTION_OUTBOX_DAYS",
    "retention_job_runs_days": "RETENTION_JOB_RUNS_DAYS",
    "retention_audit_days": "RETENTION_AUDIT_DAYS",
    "public_url": "LEADROUTER_PUBLIC_URL",
    "dashboard_token": "LEADROUTER_DASHBOARD_TOKEN",
    "metrics_token": "LEADROUTER_METRICS_TOKEN",
    "currency": "LEADROUTER_CURRENCY",
    "slack_client_id": "SLACK_CLIENT_ID",
    "slack_client_secret": "SLACK_CLIENT_SECRET",
    "trusted_proxies": "TRUSTED_PROXIES",
}

FOREVER = "forever"  # a retention that never deletes (0 says the same)
MOST_DAYS = 36_500  # a retention beyond a hundred years is a typo: `forever` says it plainly
# Retentions shorter than this would break something; the sentence says what.
LEAST_DAYS = {
    "retention_audit_days": (
        8,
        "a weekly digest counts its week's SLA misses from the audit rows",
    ),
}


class SettingsError(Exception):
    """Settings that cannot be used; the message names each variable and what is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite+aiosqlite:///./leadrouter.db", alias="DATABASE_URL")
    rules: Path = Field(Path("routing.yml"), alias="LEADROUTER_RULES")
    # How often `serve` looks at the policy file and at the version every replica is to serve.
    policy_check_seconds: float = Field(2.0, alias="LEADROUTER_POLICY_CHECK_SECONDS")
    webhook_secret: SecretStr | None = Field(None, alias="LEADROUTER_WEBHOOK_SECRET")
    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(3000, alias="PORT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")
    log_format: LogFormat = Field("text", alias="LOG_FORMAT")  # json: one object per line
    # Slack: without a bot token leadrouter routes and stores, and the cards wait in the outbox.
    slack_bot_token: SecretStr | None = Field(None, alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, alias="SLACK_APP_TOKEN")  # Socket Mode
    slack_api_url: str = Field("https://slack.com/api/", alias="SLACK_API_URL")
    # CRM records: where a lead's "Open in CRM" link points (and, for Salesforce, its API).
    salesforce_instance_url: str | None = Field(None, alias="SALESFORCE_INSTANCE_URL")
    hubspot_portal_id: str | None = Field(None, alias="HUBSPOT_PORTAL_ID")
    hubspot_app_url: str = Field("https://app.hubspot.com", alias="HUBSPOT_APP_URL")
    # Salesforce API credentials, one of: an access token (with SALESFORCE_INSTANCE_URL);
    # username, password and security token; or a connected app's client credentials.
    salesforce_access_token: SecretStr | None = Field(None, alias="SALESFORCE_ACCESS_TOKEN")
    salesforce_username: str | None = Field(None, alias="SALESFORCE_USERNAME")
    salesforce_password: SecretStr | None = Field(None, alias="SALESFORCE_PASSWORD")
    salesforce_security_token: SecretStr | None = Field(None, alias="SALESFORCE_SECURITY_TOKEN")
    salesforce_client_id: str | None = Field(None, alias="SALESFORCE_CLIENT_ID")
    salesforce_client_secret: SecretStr | None = Field(None, alias="SALESFORCE_CLIENT_SECRET")
    salesforce_domain: str | None = Field(None, alias="SALESFORCE_DOMAIN")  # login, test, acme.my
    # HubSpot: a private app's token; the app's client secret signs its webhooks.
    hubspot_access_token: SecretStr | None = Field(None, alias="HUBSPOT_ACCESS_TOKEN")
    hubspot_client_secret: SecretStr | None = Field(None, alias="HUBSPOT_CLIENT_SECRET")
    hubspot_api_url: str = Field("https://api.hubapi.com", alias="HUBSPOT_API_URL")
    # The address HubSpot posts webhooks to, when a proxy in front changes how it looks here.
    hubspot_webhook_url: str | None = Field(None, alias="HUBSPOT_WEBHOOK_URL")
    crm_concurrency: int = Field(16, alias="CRM_CONCURRENCY")
    # Retention, in days (None: forever), of the tables that only housekeeping reads (see
    # `bot.retention`). Slack sends a request again within minutes; the rest is kept for people.
    retention_request_keys_days: int | None = Field(7, alias="RETENTION_REQUEST_KEYS_DAYS")
    retention_outbox_days: int | None = Field(30, alias="RETENTION_OUTBOX_DAYS")
    retention_job_runs_days: int | None = Field(30, alias="RETENTION_JOB_RUNS_DAYS")
    retention_audit_days: int | None = Field(400, alias="RETENTION_AUDIT_DAYS")
    # The dashboard (`bot.dashboard`): managers sign in with Slack (the app's client id and
    # secret; Slack sends them back to the public URL), or the token lets its holder in.
    public_url: str | None = Field(None, alias="LEADROUTER_PUBLIC_URL")
    dashboard_token: SecretStr | None = Field(None, alias="LEADROUTER_DASHBOARD_TOKEN")
    # With it, `GET /metrics` answers only `Authorization: Bearer <token>` (a scraper outside the
    # private network); /healthz stays open, since it tells nothing but up or down.
    metrics_token: SecretStr | None = Field(None, alias="LEADROUTER_METRICS_TOKEN")
    slack_client_id: str | None = Field(None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(None, alias="SLACK_CLIENT_SECRET")
    # The currency of every amount (pipeline, won), an ISO 4217 code: shown with each, and an
    # amount a CRM or `POST /events` gives in another is left out or refused, never summed.
    currency: str | None = Field(None, alias="LEADROUTER_CURRENCY")
    # Proxies in front (Caddy) whose X-Forwarded-For names the client (`bot.http.forwarded`);
    # read as written (commas or spaces between), not as JSON as a list would be.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = Field(
        (), alias="TRUSTED_PROXIES"
    )

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def salesforce_enabled(self) -> bool:
        return any(
            value is not None
            for value in (
                self.salesforce_access_token,
                self.salesforce_username,
                self.salesforce_client_id,
            )
        )

    @property
    def hubspot_enabled(self) -> bool:
        return self.hubspot_access_token is not None

    @property
    def sign_in_with_slack(self) -> bool:
        return self.slack_client_id is not None

    @property
    def retention(self) -> Retention:
        return Retention(
            request_keys=self.retention_request_keys_days,
            outbox=self.retention_outbox_days,
            job_runs=self.retention_job_runs_days,
            audit=self.retention_audit_days,
        )

    @field_validator("*", mode="before")
    @classmethod
    def _not_empty(cls, value: object, info: ValidationInfo) -> object:
        """A setting unset by default and given as an empty line (`SLACK_SIGNING_SECRET=`, an
        uncommented line of .env.example) is a mistake: taken as a value, an empty secret
        would fail every request it checks, or check nothing."""
        name = info.field_name or ""
        unset = name in cls.model_fields and cls.model_fields[name].default is None
        if unset and isinstance(value, str | SecretStr) and not _text(value).strip():
            if name == "webhook_secret":  # serve needs it: unset is no way out
                raise ValueError(
                    "is empty; set it to a long random string (16+ characters), such as the "
                    "output of `openssl rand -hex 32`"
                )
            raise ValueError("is empty; give it a value, or remove the line to leave it unset")
        return value

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "is empty; name the policy file, such as routing.yml, or remove the line for "
                "routing.yml in the working directory"
            )
        return value

    @field_validator("policy_check_seconds", mode="before")
    @classmethod
    def _policy_check_seconds(cls, value: object) -> float:
        try:
            seconds = float(value) if isinstance(value, str | int | float) else math.nan
        except ValueError:  # not a number: float() takes surrounding spaces, and nan and inf
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 < seconds <= 3600):
            raise ValueError("must be a number of seconds from more than 0 to 3600, such as 2")
        return seconds

    @field_validator("crm_concurrency", mode="before")
    @classmethod
    def _crm_concurrency(cls, value: object) -> int:
        return _whole_number(value, 1, 64, example=16)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = check_url(value)
        except DatabaseUrlError as exc:
            raise ValueError(exc.problem) from None
        _sqlite_file(url)
        return url

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip()
        if not _is_address(host.removeprefix("[").removesuffix("]")) and not _HOST_NAME.match(host):
            raise ValueError(
                "must be an IP address or a host name, such as 0.0.0.0 or 127.0.0.1 "
                "(with no scheme, port or path)"
            )
        return host.removeprefix("[").removesuffix("]")

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: object) -> int:
        return _whole_number(value, 1, 65535, example=3000)

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (use a long random string)")
        return value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError(
                "must be the app's Bot User OAuth Token (xoxb-…), on its Install App page"
            )
        return value

    @field_validator("slack_signing_secret", "slack_client_secret")
    @classmethod
    def _slack_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # A token pasted where a secret belongs checks nothing and fails every request.
        if value is not None and value.get_secret_value().strip().startswith(("xox", "xapp-")):
            raise ValueError(
                "is a Slack token, not a secret: copy it from the app's Basic Information, "
                "App Credentials"
            )
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "must be an app-level token (xapp-…): generate one with connections:write on "
                "the app's Basic Information page, under App-Level Tokens"
            )
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not _http_url(value):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        _tokens_over_https(value, example="https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator(
        "hubspot_access_token",
        "hubspot_client_secret",
        "salesforce_access_token",
        "salesforce_security_token",
        "salesforce_client_secret",
    )
    @classmethod
    def _crm_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A token copied with its line break (`echo > file`, a paste) would be sent as a
        # header the HTTP client refuses, with the token in the error; spaces around it are
        # never part of it. A password may hold any character: it is left as given.
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if token.lower().startswith("bearer "):
            raise ValueError("give the token alone, without 'Bearer ' before it")
        if any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError("has a space or a line break inside: copy the token again")
        return SecretStr(token)

    @field_validator("hubspot_webhook_url")
    @classmethod
    def _hubspot_webhook_url(cls, value: str | None) -> str | None:
        # The signature covers this address: one HubSpot cannot post to fails every webhook.
        if value is not None and not _http_url(value := value.strip()):
            raise ValueError(
                "must be the full public address HubSpot posts to, such as "
                "https://leads.example.com/webhooks/hubspot"
            )
        return value

    @field_validator("salesforce_instance_url")
    @classmethod
    def _salesforce_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = _site_url(value, example="https://acme.my.salesforce.com")
        if url.endswith(".lightning.force.com"):
            # Where Lightning opens in a browser; the REST API answers at the My Domain.
            api = url.removesuffix(".lightning.force.com") + ".my.salesforce.com"
            raise ValueError(
                f"{url} is Lightning's address in a browser; the API's is {api} "
                "(Setup, My Domain, shows it)"
            )
        return url

    @field_validator("hubspot_app_url")
    @classmethod
    def _hubspot_url(cls, value: str) -> str:
        return _site_url(value, example="https://app.hubspot.com (or https://app-eu1.hubspot.com)")

    @field_validator("hubspot_api_url")
    @classmethod
    def _hubspot_api(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")) or " " in value:
            raise ValueError("must be an http(s) URL such as https://api.hubapi.com")
        _tokens_over_https(value, example="https://api.hubapi.com")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        example = "https://leads.example.com (http:// on loopback only)"
        return None if value is None else _site_url(value, example=example, loopback_http=True)

    @field_validator("dashboard_token", "metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters, such as `openssl rand -hex 32`")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = currency_code(value)
        if code is None:
            raise ValueError(
                "must be the ISO 4217 code of the currency every amount is in, such as USD, "
                "EUR or GBP"
            )
        return code

    @field_validator("slack_client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+\.\d+", value := value.strip()):
            raise ValueError(
                "must be the Slack app's Client ID (Basic Information, App Credentials), "
                "such as 1234567890.1234567890123"
            )
        return value

    @field_validator("salesforce_domain")
    @classmethod
    def _salesforce_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().removesuffix(".salesforce.com")
        if not value or not all(part.isalnum() or "-" in part for part in value.split(".")):
            raise ValueError("must be login, test, or your My Domain such as acme.my")
        return value

    @field_validator("hubspot_portal_id")
    @classmethod
    def _portal_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not (value.isascii() and value.isdigit()):
            raise ValueError(
                "must be the HubSpot account id, digits only (the number after /contacts/ "
                "in the address of any HubSpot record)"
            )
        return value

    @model_validator(mode="after")
    def _slack_mode(self) -> Settings:
        if self.slack_bot_token is None:
            if self.slack_app_token is not None:
                raise ValueError("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not; set both")
            return self
        if self.slack_app_token is None and self.slack_signing_secret is None:
            raise ValueError(
                "SLACK_SIGNING_SECRET is needed to receive Slack's requests over HTTP "
                "(or set SLACK_APP_TOKEN to use Socket Mode)"
            )
        return self

    @model_validator(mode="after")
    def _sign_in(self) -> Settings:
        if (self.slack_client_id is None) != (self.slack_client_secret is None):
            raise ValueError(
                "Sign in with Slack needs both SLACK_CLIENT_ID and SLACK_CLIENT_SECRET "
                "(the app's Basic Information, App Credentials)"
            )
        if self.slack_client_id is not None and self.public_url is None:
            raise ValueError(
                "Sign in with Slack needs LEADROUTER_PUBLIC_URL, the address browsers reach "
                "leadrouter at (such as https://leads.example.com), to send people back to"
            )
        return self

    @model_validator(mode="after")
    def _salesforce_parts(self) -> Settings:
        # Half a login is most often a name misspelt (SALESFORCE_USER): said, not ignored.
        for part, whole in (
            ("salesforce_password", "salesforce_username"),
            ("salesforce_security_token", "salesforce_username"),
            ("salesforce_client_secret", "salesforce_client_id"),
        ):
            if getattr(self, part) is not None and getattr(self, whole) is None:
                raise ValueError(
                    f"{ENV_NAMES[part]} is set but {ENV_NAMES[whole]} is not: set both, or neither"
                )
        return self

    @model_validator(mode="after")
    def _salesforce_login(self) -> Settings:
        if self.salesforce_access_token is not None:
            if self.salesforce_instance_url is None:
                raise ValueError(
                    "SALESFORCE_ACCESS_TOKEN needs SALESFORCE_INSTANCE_URL "
                    "(such as https://acme.my.salesforce.com)"
                )
        elif self.salesforce_username is not None:
            if self.salesforce_password is None:
                raise ValueError("SALESFORCE_USERNAME needs SALESFORCE_PASSWORD")
        elif self.salesforce_client_id is not None and (
            self.salesforce_client_secret is None or self.salesforce_domain is None
        ):
            raise ValueError(
                "SALESFORCE_CLIENT_ID needs SALESFORCE_CLIENT_SECRET and SALESFORCE_DOMAIN "
                "(your My Domain, such as acme.my)"
            )
        return self

    @field_validator(
        "retention_request_keys_days",
        "retention_outbox_days",
        "retention_job_runs_days",
        "retention_audit_days",
        mode="before",
    )
    @classmethod
    def _retention(cls, value: object, info: ValidationInfo) -> int | None:
        if isinstance(value, str):
            value = value.strip().lower()
            if value.isascii() and value.isdigit():
                value = int(value)
        if value in (FOREVER, None) or (type(value) is int and value == 0):
            return None
        if type(value) is not int or value < 0:
            raise ValueError(
                f"must be a whole number of days, such as 30, or {FOREVER} (or 0) "
                "to keep these rows forever"
            )
        if info.field_name in LEAST_DAYS:
            least, why = LEAST_DAYS[info.field_name]
            if value < least:
                raise ValueError(f"must be at least {least} days: {why} (or {FOREVER})")
        if value > MOST_DAYS:
            raise ValueError(
                f"must be at most {MOST_DAYS:,} days (a hundred years); "
                f"write {FOREVER} to keep these rows forever"
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies(cls, value: object) -> tuple[IPv4Network | IPv6Network, ...]:
        if isinstance(value, str):
            written = value.replace(",", " ").split()
            if not written:
                raise ValueError(
                    "is empty; give the addresses or networks of the proxies in front, such "
                    "as 172.18.0.0/16, or remove the line to trust none"
                )
        elif isinstance(value, list | tuple):
            written = [str(entry).strip() for entry in value]
        else:
            raise ValueError("must be addresses or networks, such as 172.18.0.0/16")
        return tuple(_network(entry) for entry in written)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @field_validator("log_format", mode="before")
    @classmethod
    def _log_format(cls, value: object) -> object:
        fmt = value.strip().lower() if isinstance(value, str) else value
        if fmt not in LOG_FORMATS:
            raise ValueError("must be text or json (json: one object per line, for a log shipper)")
        return fmt


# A host name as RFC 1123 allows: dot-separated labels of letters, digits and inner hyphens.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$",
    re.ASCII,
)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.removeprefix("[").removesuffix("]").lower()
    return host == "localhost" or (_is_address(host) and ipaddress.ip_address(host).is_loopback)


def _sqlite_file(url: str) -> None:
    """A ValueError unless a SQLite URL names a file: one in memory, as `sqlite:///` opens,
    would take leads and lose them all when the process ends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    if parsed.host:
        raise ValueError(
            "a SQLite URL has three slashes before a path under the working directory "
            "(sqlite:///leadrouter.db), four before one from the root (sqlite:////data/leadrouter.db)"
        )
    if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
        raise ValueError(
            "names no SQLite file, and a database in memory is lost when the process ends: "
            "give its path, such as sqlite:///leadrouter.db (three slashes: under the working "
            "directory) or sqlite:////data/leadrouter.db (four: from the root)"
        )


def _network(text: str) -> IPv4Network | IPv6Network:
    """An address or a network in CIDR notation, or a ValueError naming it: one with bits set
    past its prefix (10.1.2.3/8) is refused rather than widened, being most likely a typo."""
    shown = repr(text[:60])
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        widened = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(
            f"{shown} is not an IP address or a network such as 172.18.0.0/16 "
            "(a proxy's name is not read: give its address)"
        ) from None
    address = text.split("/", 1)[0]
    raise ValueError(
        f"{shown} has bits set past its prefix: write {widened} for the network, or {address} "
        "for the one address"
    )


def _text(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _tokens_over_https(url: str, *, example: str) -> None:
    """An API the bot sends its token to is reached over https; plain http only on this machine
    (a fake in tests), or the token would cross the network readable by anyone on the way."""
    if urlsplit(url).scheme == "http" and not is_loopback(urlsplit(url).hostname or ""):
        raise ValueError(
            f"must be an https URL such as {example}: over http the token would travel "
            "unencrypted (http:// is for an address of this machine only)"
        )


def _http_url(url: str) -> bool:
    """Whether `url` is an http(s) address with a host, and no space in it."""
    parts = urlsplit(url)
    try:
        host, _ = parts.hostname, parts.port  # .port raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and url.isprintable() and " " not in url


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _site_url(value: str, *, example: str, loopback_http: bool = False) -> str:
    """An https site address with nothing after the host, without its trailing slash (http too
    for an address of this machine, with `loopback_http`)."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    try:
        host, _ = parts.hostname, parts.port  # .port raises for a port that is not a number
    except ValueError:
        host = None
    plain = loopback_http and parts.scheme == "http" and is_loopback(host or "")
    if (parts.scheme != "https" and not plain) or not host or " " in url or not url.isprintable():
        raise ValueError(f"must be an https:// address such as {example}")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"must be the site address alone, such as {example}, with no path")
    return url


# Names of this program's settings begin so; another such name is most likely one misspelt.
_OUR_PREFIXES = (
    "LEADROUTER_",
    "SLACK_",
    "SALESFORCE_",
    "HUBSPOT_",
    "RETENTION_",
    "CRM_",
    "LOG_",
    "DATABASE_",
)
_DOTENV_NAME = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


def unknown_settings(environ: Mapping[str, str], dotenv: Path = Path(".env")) -> list[str]:
    """A sentence for each variable of the environment or `.env` that looks like one of the
    settings (a name of theirs close to it) and is not one: ignored, it would leave a setting
    at its default without a word. Names only, never values. In the environment only names
    with a prefix of ours are looked at (it holds everyone's variables); in `.env` all."""
    known = set(ENV_NAMES.values())
    read_elsewhere = {"LEADROUTER_PLAIN_PYTHON"}  # `routing`: no compiled modules
    where = dict.fromkeys(environ, "")
    try:
        text = dotenv.read_text(errors="replace")
    except OSError:
        text = ""
    for name in _DOTENV_NAME.findall(text):
        where.setdefault(name, " (in .env)")
    found = []
    for name in sorted(where):
        ours = name.upper().startswith(_OUR_PREFIXES) or where[name]
        if name in known | read_elsewhere or not ours:
            continue
        close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.8)
        if close:
            found.append(
                f"{name}{where[name]} is not a setting leadrouter reads: did you mean {close[0]}?"
            )
    return found


def _whole_number(value: object, low: int, high: int, *, example: int) -> int:
    """`value` as a whole number from `low` to `high` (digits only: no sign, point or exponent)."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
        raise ValueError(f"must be a whole number from {low} to {high}, such as {example}")
    return int(text)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`; SettingsError with every problem at once."""
    try:
        with env_file.quiet():  # `env_file.problems` says which lines were skipped, and why
            return Settings(**overrides)  # type: ignore[arg-type]
    except env_file.NotText as exc:
        raise SettingsError(str(exc)) from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            message = str(error["msg"]).removeprefix("Value error, ")
            if not error["loc"]:  # a rule across settings: its message names them
                lines.append(message)
                continue
            field = str(error["loc"][0])
            lines.append(f"{ENV_NAMES.get(field, field.upper())}: {message}")
        raise SettingsError("; ".join(lines)) from None
