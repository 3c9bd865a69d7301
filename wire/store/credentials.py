"""AWS credentials for the S3 client, from the standard chain, at the least import cost.

Order (the AWS SDKs' order):

1. keys given in code (tests, `devkit`);
2. `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`;
3. static keys of the profile (`AWS_PROFILE`, else `default`) in the shared credentials file
   (`AWS_SHARED_CREDENTIALS_FILE`, else ~/.aws/credentials);
4. anything else: botocore's provider chain (profiles with `role_arn`, SSO,
   `credential_process`, web identity, container and instance roles), handed to obstore as its
   `credential_provider`. obstore's own chain knows the environment, web identity, container
   and instance roles but not profiles, SSO or `credential_process`, so botocore's is the one
   chain for all of them. Only machines without static keys pay for importing botocore.

Refresh: a provider answer carries `expires_at`; obstore asks again before then. Refreshable
botocore credentials are handed on with at most `REASK_SECONDS` of life, so botocore's own
refresh window (it refreshes 10-15 minutes before expiry) decides when keys change.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wire.errors import StoreConfigError
from wire.records import record

if TYPE_CHECKING:
    import datetime

REASK_SECONDS = 300.0
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a credentials file "
    "or profile, or give the machine an instance role"
)


@record
class Credentials:
    """AWS credentials: access key, secret key and the session token, if any."""

    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(access_key={self.access_key[:4]}..., secret_key=***)"


def find_credentials(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Static credentials from the environment or the shared credentials file, else None."""
    env = os.environ if env is None else env
    access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        return Credentials(access, secret, env.get("AWS_SESSION_TOKEN") or None)
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    profile = env.get("AWS_PROFILE") or "default"
    import configparser  # only without credentials in the environment

    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return None
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    access, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not access or not secret:
        return None
    return Credentials(
        access.strip(), secret.strip(), (section.get("aws_session_token") or "").strip() or None
    )


def env_region(env: Mapping[str, str] | None = None) -> str | None:
    """AWS_REGION (set by ECS, Lambda and the newer SDKs) or AWS_DEFAULT_REGION."""
    env = os.environ if env is None else env
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


Provider = Callable[[], dict[str, Any]]


class BotocoreProvider:
    """obstore's `credential_provider` on botocore's provider chain; the botocore session is
    made on the first call (so a store can be opened, and fail clearly, without it)."""

    def __init__(self, session: Any = None) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._creds: Any = None

    def _found(self) -> Any:
        with self._lock:
            if self._creds is None:
                if self._session is None:
                    import botocore.session

                    self._session = botocore.session.get_session()
                creds = self._session.get_credentials()
                if creds is None:
                    raise StoreConfigError(NO_CREDENTIALS)
                self._creds = creds
            return self._creds

    def region(self) -> str | None:
        import botocore.session

        session = self._session or botocore.session.get_session()
        self._session = session
        region = session.get_config_variable("region")
        return str(region) if region else None

    def __call__(self) -> dict[str, Any]:
        import datetime

        creds = self._found()
        frozen = creds.get_frozen_credentials()
        expires: datetime.datetime | None = None
        expiry = getattr(creds, "_expiry_time", None)  # RefreshableCredentials only
        if isinstance(expiry, datetime.datetime):
            soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=REASK_SECONDS)
            expires = min(expiry.astimezone(datetime.UTC), soon)
        return {
            "access_key_id": str(frozen.access_key),
            "secret_access_key": str(frozen.secret_key),
            "token": frozen.token or None,
            "expires_at": expires,
        }


def static_provider(creds: Credentials) -> Provider:
    """Keys found without botocore (environment, shared file), as obstore's provider."""
    answer = {
        "access_key_id": creds.access_key,
        "secret_access_key": creds.secret_key,
        "token": creds.token,
        "expires_at": None,
    }
    return lambda: answer
