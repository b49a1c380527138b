"""Sign in with Slack: OpenID Connect's authorization code flow, against Slack's own endpoints.

1. The browser is sent to https://slack.com/openid/connect/authorize with the app's client id,
   the scopes `openid email profile`, a one-time `state` and where to come back to.
2. Slack sends it back to `/dashboard/sign-in/slack/callback` with a `code` and that `state`.
3. The code goes, with the client secret, to `openid.connect.token` for an access token, and
   the access token to `openid.connect.userInfo` for who the person is.

The identity comes from Slack over TLS, in exchange for a code that is useless without the client
secret, so the id_token's signature adds nothing here (OpenID Connect Core 3.1.3.7 lets a client
rely on TLS for a token it got straight from the token endpoint). Both calls go through
slack_sdk's client with a logger of its own held at INFO: at DEBUG it would log the tokens Slack
answers with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

SCOPES = "openid email profile"
CALLBACK_PATH = "/dashboard/sign-in/slack/callback"
# Beside the Web API: https://slack.com/api/ -> https://slack.com/openid/connect/authorize
AUTHORIZE_FROM_API = "../openid/connect/authorize"
TIMEOUT_S = 10

_quiet = logging.getLogger(__name__ + ".calls")
_quiet.setLevel(logging.INFO)


class SignInFailed(Exception):
    """Slack did not say who the person is; the message says why, with nothing secret in it."""


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    user_id: str
    name: str
    email: str | None  # only an address Slack has verified


@dataclass(frozen=True)
class SlackSignIn:
    client_id: str
    client_secret: SecretStr
    redirect_uri: str
    api_url: str  # SLACK_API_URL: where the two methods are, and beside it the authorize page

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackSignIn | None:
        if settings.slack_client_id is None or settings.slack_client_secret is None:
            return None
        assert settings.public_url is not None  # the settings require it with a client id
        return cls(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            redirect_uri=settings.public_url + CALLBACK_PATH,
            api_url=settings.slack_api_url,
        )

    def authorize_url(self, state: str) -> str:
        query = {
            "response_type": "code",
            "scope": SCOPES,
            "client_id": self.client_id,
            "state": state,
            "redirect_uri": self.redirect_uri,
        }
        return f"{urljoin(self.api_url, AUTHORIZE_FROM_API)}?{urlencode(query)}"

    async def identify(self, code: str) -> SlackIdentity:
        """Who signed in, from the code Slack sent back; SignInFailed when Slack will not say."""
        client = AsyncWebClient(base_url=self.api_url, timeout=TIMEOUT_S, logger=_quiet)
        try:
            tokens = await client.openid_connect_token(
                client_id=self.client_id,
                client_secret=self.client_secret.get_secret_value(),
                code=code,
                redirect_uri=self.redirect_uri,
                grant_type="authorization_code",
            )
            info = await client.openid_connect_userInfo(token=str(tokens["access_token"]))
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            raise SignInFailed(
                f"Slack refused the sign-in ({error or 'no reason given'})"
            ) from None
        except (aiohttp.ClientError, TimeoutError):
            raise SignInFailed("Slack could not be reached to finish the sign-in") from None
        except KeyError:
            raise SignInFailed("Slack's answer had no access token") from None
        user_id = info.get("https://slack.com/user_id") or info.get("sub")
        if not isinstance(user_id, str) or not user_id:
            raise SignInFailed("Slack's answer did not say who signed in")
        email = info.get("email")
        verified = info.get("email_verified") is True and isinstance(email, str)
        name = info.get("name")
        return SlackIdentity(
            user_id=user_id,
            name=name if isinstance(name, str) and name else user_id,
            email=email.lower() if verified and isinstance(email, str) else None,
        )
