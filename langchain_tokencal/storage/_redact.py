"""Showing a store URL without its secrets: the one redaction every message uses.

A store URL may carry a password in its user info (``redis://user:pw@host``)
or in its query (``?password=pw``). Every log line, error message and ``url``
attribute that shows a URL shows `redact_url` of it instead. Kept apart from
`langchain_tokencal.storage._urls` (which opens stores) so the backends can
use it without importing each other.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

__all__ = ["redact_url"]

MASK: Final = "***"

# Query keys whose value is hidden: anything that names a credential, matched
# case-insensitively anywhere in the (unquoted) key.
_SECRET_KEY: Final = re.compile(r"pass|pwd|token|secret|auth|key|cred", re.IGNORECASE)


def redact_url(url: str) -> str:
    """Return ``url`` with every password and secret-looking option as ``***``.

    Hides the password of the user info (``redis://user:pw@host``,
    ``redis://:pw@host``; the user name stays) and the value of any query
    option whose name looks like a credential (``password``, ``passwd``,
    ``pwd``, ``token``, ``secret``, ``auth``, ``api_key``..., in any case).
    Works the same for ``redis://``, ``rediss://``, ``unix://``, ``sqlite://``
    and any other scheme; everything else is kept as written, so a URL with
    no secret comes back unchanged. Pure function, thread-safe.

    Args:
        url: A store URL, as the user gave it.

    Returns:
        The URL, safe to log.

    Example:
        ```python
        from langchain_tokencal.storage import redact_url

        assert redact_url("redis://me:s3cret@cache:6379/0") == (
            "redis://me:***@cache:6379/0"
        )
        assert redact_url("unix:///run/redis.sock?db=0&password=s3cret") == (
            "unix:///run/redis.sock?db=0&password=***"
        )
        assert redact_url("sqlite:///calibration.db") == "sqlite:///calibration.db"
        ```
    """
    base, sep, query = url.partition("?")
    scheme, colons, rest = base.partition("://")
    # A rest that starts with "/" has no user info (sqlite:///path,
    # unix:///path); otherwise the user info ends at the last "@", so a
    # password holding "@" or "/" is hidden whole.
    creds, at, host = rest.rpartition("@")
    if colons and at and not rest.startswith("/"):
        user, has_password, _ = creds.partition(":")
        if has_password:
            base = f"{scheme}://{user}:{MASK}@{host}"
    if not sep:
        return base
    pairs = []
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        pairs.append(
            f"{key}={MASK}" if eq and _SECRET_KEY.search(unquote(key)) else pair
        )
    return base + sep + "&".join(pairs)
