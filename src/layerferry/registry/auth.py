"""Answering a registry's ``WWW-Authenticate`` challenge: HTTP basic, or a bearer token.

A bearer challenge names a token endpoint (``realm``), a ``service`` and maybe a ``scope``; the
token is asked for with the user's credentials (basic auth to the endpoint, or an identity
token as a refresh token), or anonymously when there are none. Tokens are kept per scope set.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ..errors import AuthError
from .credentials import Credentials
from .transport import translated

_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
MAX_TOKEN_RESPONSE = 1024 * 1024


@dataclass(frozen=True)
class Challenge:
    scheme: str
    """``basic`` or ``bearer`` (lowercase)."""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str) -> Challenge:
    """``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`` and kin."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
        for m in _PARAM.finditer(rest)
    }
    params = {k: re.sub(r"\\(.)", r"\1", v) for k, v in params.items()}
    return Challenge(scheme.lower(), params)


def basic_header(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Authenticator:
    """The ``Authorization`` header for a registry, made from its challenges when they come.

    *credentials* is called at most once, when a challenge first asks for them.
    """

    def __init__(
        self,
        registry: str,
        client: httpx.Client,
        credentials: Callable[[], Credentials | None],
    ) -> None:
        self.registry = registry
        self._client = client
        self._lookup = credentials
        self._looked_up = False
        self._credentials: Credentials | None = None
        self._basic = False
        self._tokens: dict[frozenset[str], str] = {}
        self._challenge: Challenge | None = None
        self._lock = threading.Lock()  # HEADs run in parallel; one login, one token per scope

    def credentials(self) -> Credentials | None:
        if not self._looked_up:
            self._credentials = self._lookup()
            self._looked_up = True
        return self._credentials

    def header(self, scopes: frozenset[str]) -> str | None:
        """What to send before any challenge for these scopes (None: try without)."""
        with self._lock:
            return self._header(scopes)

    def _header(self, scopes: frozenset[str]) -> str | None:
        if self._basic:
            creds = self.credentials()
            return basic_header(creds) if creds else None
        if self._challenge is not None and self._challenge.scheme == "bearer":
            token = self._tokens.get(scopes)
            if token is None:
                token = self._fetch_token(self._challenge, scopes)
            return f"Bearer {token}"
        return None

    def answer(self, header: str, scopes: frozenset[str], sent: str | None) -> str:
        """The header to retry with after a 401 carrying *header* for a request that was *sent*
        with the ``Authorization`` given (None: without); raises if there is none."""
        with self._lock:
            return self._answer(header, scopes, sent)

    def _answer(self, header: str, scopes: frozenset[str], sent: str | None) -> str:
        challenge = parse_challenge(header)
        if challenge.scheme == "basic":
            creds = self.credentials()
            if creds is None:
                raise AuthError(
                    f"{self.registry}: the registry asks for a login and there is none for it",
                    hint=f"log in first (`docker login {self.registry}` writes ~/.docker/config.json)",
                )
            if self._basic and sent == basic_header(creds):
                raise AuthError(
                    f"{self.registry}: the registry refused the saved login",
                    hint=f"log in again: `docker login {self.registry}`",
                )
            self._basic = True
            return basic_header(creds)
        if challenge.scheme == "bearer":
            current = self._tokens.get(scopes)
            if current is not None and sent != f"Bearer {current}":
                return f"Bearer {current}"  # another request got a token meanwhile
            if current is not None:
                # The token just used was refused: ask once more (the caller gives up after).
                del self._tokens[scopes]
            self._challenge = challenge
            wanted = scopes | _scopes_of(challenge)
            return f"Bearer {self._fetch_token(challenge, frozenset(wanted), key=scopes)}"
        raise AuthError(f"{self.registry}: unsupported authentication scheme {challenge.scheme!r}")

    def _fetch_token(
        self, challenge: Challenge, scopes: frozenset[str], key: frozenset[str] | None = None
    ) -> str:
        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"{self.registry}: bearer challenge without a usable realm")
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        params += [("scope", s) for s in sorted(scopes)]
        creds = self.credentials()
        headers: dict[str, str] = {}
        with translated(self.registry, "asking for a token"):
            if creds is not None and creds.is_identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.secret}
                form["service"] = challenge.params.get("service", "")
                form["scope"] = " ".join(sorted(scopes))
                response = self._client.post(realm, data=form)
            else:
                if creds is not None:
                    headers["Authorization"] = basic_header(creds)
                response = self._client.get(realm, params=params, headers=headers)
        if response.status_code in (401, 403):
            raise AuthError(
                f"{self.registry}: the token service refused "
                + ("the saved login" if creds else "an anonymous request"),
                hint=None if creds else f"log in first: `docker login {self.registry}`",
            )
        if response.status_code != 200 or len(response.content) > MAX_TOKEN_RESPONSE:
            raise AuthError(f"{self.registry}: the token service answered {response.status_code}")
        try:
            data = response.json()
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError) as exc:
            raise AuthError(f"{self.registry}: the token service answered no JSON") from exc
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.registry}: the token service answered no token")
        self._tokens[key if key is not None else scopes] = token
        return token


def _scopes_of(challenge: Challenge) -> set[str]:
    scope = challenge.params.get("scope", "")
    return {s for s in scope.split(" ") if s}
