"""Typed settings from the environment and `.env`, checked once at start.

Nothing reads the environment at import time: `load_settings()` is called by the entry point,
and tests build `Settings(...)` directly. A missing or malformed setting stops the process with a
sentence naming the variable, never a traceback; secrets are `SecretStr`, never printed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.db import DatabaseUrlError, check_url

ENV_NAMES = {
    "database_url": "DATABASE_URL",
    "rules": "LEADROUTER_RULES",
    "webhook_secret": "LEADROUTER_WEBHOOK_SECRET",
    "host": "HOST",
    "port": "PORT",
    "log_level": "LOG_LEVEL",
}


class SettingsError(Exception):
    """Settings that cannot be used; the message names each variable and what is wrong."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field("sqlite+aiosqlite:///./leadrouter.db", alias="DATABASE_URL")
    rules: Path = Field(Path("routing.yml"), alias="LEADROUTER_RULES")
    webhook_secret: SecretStr | None = Field(None, alias="LEADROUTER_WEBHOOK_SECRET")
    host: str = Field("0.0.0.0", alias="HOST")
    port: int = Field(3000, ge=1, le=65535, alias="PORT")
    log_level: str = Field("INFO", alias="LOG_LEVEL")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            return check_url(value)
        except DatabaseUrlError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("webhook_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (use a long random string)")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`; SettingsError with every problem at once."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else "settings"
            name = ENV_NAMES.get(field, field.upper())
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise SettingsError("; ".join(lines)) from None
