"""The one place that takes secrets out of text: URLs, log lines, upstream error messages.

Pure: callers give the secret values (see
:func:`oriole.environment.settings.secret_values`); this module only rewrites strings. Two tools:

* :func:`redact_url` for a URL Oriole shows (endpoint labels, DSNs in messages): no userinfo,
  no fragment, and query values masked except a few harmless connection parameters.
* :class:`Redactor` for free text from elsewhere (an upstream error body, a library's log
  line, an exception): every configured secret value, in its raw and percent-encoded forms,
  and the userinfo of any URL in the text become :data:`MASK`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "Redactor", "redact_url", "redact_userinfo", "url_secrets"]

MASK = "***"

#: Query parameters shown as they are: connection settings, never credentials. Any other
#: parameter keeps its name and loses its value (``?password=`` or ``?key=`` is masked).
SAFE_QUERY_KEYS = frozenset(
    {
        "host",
        "port",
        "dbname",
        "user",
        "sslmode",
        "sslrootcert",
        "application_name",
        "connect_timeout",
        "target_session_attrs",
        "api-version",
    }
)

#: ``scheme://userinfo@`` anywhere in a text. Userinfo cannot hold ``/``, ``?``, ``#`` or
#: whitespace, so the match stops at the authority.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#@]*@)")


def redact_url(url: str, *, keep_user: bool = False) -> str:
    """``url`` without userinfo or fragment, query values masked: safe to log and to label.

    ``keep_user`` keeps the user name (a DSN's role is worth showing; an endpoint's user
    name may be a key, so it is dropped by default). The password never stays.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # not a URL at all (e.g. an unbalanced IPv6 bracket): show nothing
        return MASK
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    if keep_user and parts.username:
        netloc = f"{parts.username}@{netloc}"
    query = ""
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = urlencode(
            [(key, value if key.lower() in SAFE_QUERY_KEYS else MASK) for key, value in pairs],
            safe="*/",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_userinfo(text: str) -> str:
    """``text`` with the userinfo of every URL in it masked (``http://***@host``)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)


def url_secrets(url: str, *, username: bool = True) -> list[str]:
    """The credentials a URL carries: password, values of unsafe query keys and, unless
    ``username`` is False (a DSN's user is a role name, not a secret), the user name."""
    try:
        parts = urlsplit(url)
        found = [parts.username if username else None, parts.password]
    except ValueError:
        return []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() not in SAFE_QUERY_KEYS]
    return [unquote(value) for value in found if value]


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in text: as is, and percent-encoded (URLs, forms)."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), unquote(secret)} - {""}


class Redactor:
    """Masks configured secret values and URL userinfo in any text; callable.

    Matching is exact and case-sensitive; longer secrets are masked first, so a secret that
    contains another is masked whole. Immutable: :meth:`with_secrets` returns a new one.
    """

    __slots__ = ("_pattern", "_secrets")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: frozenset[str] = frozenset(s for s in secrets if s)
        forms = {form for secret in self._secrets for form in _forms(secret)}
        ordered = sorted(forms, key=lambda s: (-len(s), s))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def with_secrets(self, *secrets: str | None) -> Redactor:
        """This redactor plus ``secrets`` (e.g. credentials found in an endpoint URL)."""
        return Redactor([*self._secrets, *secrets])

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return redact_userinfo(text)

    def __repr__(self) -> str:  # never the values
        return f"Redactor({len(self._secrets)} secrets)"
