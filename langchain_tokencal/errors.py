"""Exceptions raised by langchain-tokencal.

Every exception the package raises on purpose derives from `TokenCalError`, so
one ``except TokenCalError`` catches them all. Most also derive from the
built-in exception their situation calls for, so code written against
`ValueError` or `KeyError` keeps working.

```
TokenCalError
 ├── ConfigError (ValueError)          a setting or argument is invalid
 │    ├── UnknownModelError            a model name cannot be resolved
 │    └── UnknownProviderError         a provider name is not supported
 ├── UsageError (ValueError)           a usage payload cannot be trusted
 ├── EncodingUnavailableError          a tiktoken encoding cannot be loaded
 ├── EventError (ValueError)           a stored event or calibration file is
 │                                     malformed (`langchain_tokencal.events`)
 └── StoreError (RuntimeError)         a calibration store cannot be used
                                       (`langchain_tokencal.storage`)
```

Callbacks never raise these into a model call: the handler logs and degrades.
They reach users only from calls they make themselves (`create_counter`,
`local_counter(..., strict=True)`, `parse_usage(..., strict=True)`,
`TokenCalibrationHandler.from_config`, `TokenCalibrationHandler.load`, a
store URL that names an unusable file).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EncodingUnavailableError",
    "EventError",
    "StoreError",
    "TokenCalError",
    "UnknownModelError",
    "UnknownProviderError",
    "UsageError",
]


class TokenCalError(Exception):
    """Base class of every error raised by langchain-tokencal.

    Example:
        ```python
        from langchain_tokencal import TokenCalError, create_counter

        try:
            create_counter("gpt-4o", provider="nope")
        except TokenCalError as err:
            print(err)
        ```
    """


class ConfigError(TokenCalError, ValueError):
    """A setting or argument is invalid; the message names the valid choices."""


class UnknownModelError(ConfigError):
    """A model name cannot be mapped to a counter or encoding."""


class UnknownProviderError(ConfigError):
    """A provider name is not one langchain-tokencal knows."""


class UsageError(TokenCalError, ValueError):
    """A usage payload has no usage or cannot be trusted.

    Raised only by strict parsing; the default parsing returns ``None`` and
    keeps the reason available through `explain_usage`.
    """


class EncodingUnavailableError(TokenCalError, RuntimeError):
    """A tiktoken encoding could not be loaded (typically: offline, no cache).

    Raised only where an exact count was demanded (``local_counter(...,
    strict=True)``); by default a counter without its encoding logs one
    warning and approximates. Fix it by pointing ``TIKTOKEN_CACHE_DIR`` at a
    folder holding the encoding files, or let the counter fall back to the
    approximate count.
    """


class EventError(TokenCalError, ValueError):
    """A stored event cannot be decoded (corrupt or from an unknown version)."""


class StoreError(TokenCalError, RuntimeError):
    """A store cannot be opened, read or written.

    The message names the store (passwords redacted) and the reason the
    operating system, SQLite or Redis gave.

    Example:
        ```python
        from langchain_tokencal.storage import StoreError, open_store

        try:
            open_store("sqlite:////proc/no/such/dir/calibration.db")
        except StoreError as err:
            print(err)
        ```
    """
