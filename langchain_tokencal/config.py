"""Configuration of calibrated counters and the handler."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "ENV_PREFIX",
    "HANDLER_SETTINGS",
    "CounterConfig",
    "check_names",
    "environment_settings",
    "read_settings",
]

# Below this an "interval" would exclude the estimate's own error half the time.
_MIN_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class CounterConfig:
    """Sizes, lifetimes and windows of a calibrated counter.

    Attributes:
        cache_ttl: Seconds a learned count (whole prompt, message cost, tool-set
            base) stays usable; ``None`` keeps it until evicted by size.
        cache_size: Entries kept in each learned-count map, per model.
        memo_size: Messages whose local features are memoized, per counter.
        min_points: Observations before a model's interval is taken from its
            own residuals rather than the wide prior interval.
        max_points: Effective window of the regression (exponential forgetting)
            and of the residuals behind the interval.
        coverage: Probability the interval ``[low, high]`` is meant to cover.
        pending_ttl: Seconds a started run waits for its end before it is
            dropped (a cancelled ``ainvoke`` fires neither end nor error).
        pending_size: Started runs kept at once.
        tokenizers: Model names mapped to a Hugging Face repo id or a folder
            holding ``tokenizer.json``, for names that are not repo ids
            (``{"llama3.1:8b": "meta-llama/Llama-3.1-8B-Instruct"}``).
        own_tokenizers: Count models whose tokenizer is on disk (the local
            Hugging Face cache) exactly with it; False counts them as before.
        max_models: Live counters a handler keeps; past it the least recently
            used idle ones are parked (their state compressed, ~10x smaller,
            restored on their next use), so memory stays bounded however
            many models a handler sees. `stats` lists live models only.
        hash_key: A secret that keys every message digest and tool-set
            fingerprint (BLAKE2b), so that reading a store does not confirm a
            guessed message; default ``TOKENCAL_HASH_KEY``. Processes sharing
            a store must share the key: digests made with another key (or
            none) never match, so what they learned is not reused.
        snapshot_every: Events between snapshots of a SQLite or Redis store
            (the learned state, which replaces the events before it: start-up
            and store size stay bounded); 0 never writes one.

    Example:
        ```python
        from langchain_tokencal.config import CounterConfig

        config = CounterConfig.from_mapping({"cache_size": 1000, "min_points": 5})
        assert config.cache_size == 1000
        ```
    """

    cache_ttl: float | None = None
    cache_size: int = 50_000
    memo_size: int = 100_000
    min_points: int = 5
    max_points: int = 500
    coverage: float = 0.95
    pending_ttl: float = 900.0
    pending_size: int = 10_000
    tokenizers: dict[str, str] = dataclasses.field(default_factory=dict)
    own_tokenizers: bool = True
    snapshot_every: int = 20_000
    max_models: int = 200
    hash_key: str | None = dataclasses.field(
        default_factory=lambda: os.environ.get("TOKENCAL_HASH_KEY") or None,
        repr=False,  # a secret: never in a log line
    )

    def __post_init__(self) -> None:
        """Validate every field, naming the fix."""
        positive_ints = (
            "cache_size",
            "memo_size",
            "min_points",
            "max_points",
            "max_models",
        )
        for name in (*positive_ints, "pending_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"{name} must be a positive integer, got {value!r}."
                raise ConfigError(msg)
        for name in ("cache_ttl", "pending_ttl"):
            value = getattr(self, name)
            if value is None and name == "cache_ttl":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                msg = f"{name} must be a number of seconds, got {value!r}."
                raise ConfigError(msg)
            if not value > 0:
                msg = f"{name} must be > 0 seconds, got {value!r}."
                raise ConfigError(msg)
        tokenizers: Any = self.tokenizers
        if not isinstance(tokenizers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tokenizers.items()
        ):
            msg = (
                "tokenizers must map model names to repo ids or folders, "
                f"got {tokenizers!r}."
            )
            raise ConfigError(msg)
        object.__setattr__(self, "tokenizers", dict(tokenizers))
        _check_store_settings(self.snapshot_every, self.hash_key)
        own: Any = self.own_tokenizers
        if not isinstance(own, bool):
            msg = f"own_tokenizers must be true or false, got {self.own_tokenizers!r}."
            raise ConfigError(msg)
        if not _MIN_COVERAGE <= self.coverage < 1.0:
            msg = f"coverage must be in [0.5, 1.0), got {self.coverage!r}."
            raise ConfigError(msg)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The accepted setting names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> CounterConfig:
        """Build a config from a dict (read from YAML, TOML or JSON).

        Raises:
            ConfigError: On an unknown key (the message lists the valid ones)
                or an invalid value.
        """
        check_names(mapping, cls.field_names(), what="setting")
        return cls(**dict(mapping))

    def replace(self, **changes: Any) -> CounterConfig:
        """A copy with some settings changed (validated)."""
        return self.from_mapping({**dataclasses.asdict(self), **changes})


def check_names(
    mapping: Mapping[str, Any],
    valid: Sequence[str],
    *,
    what: str,
    plural: str | None = None,
) -> None:
    """Refuse a key of ``mapping`` that is not in ``valid``, listing the valid ones.

    Raises:
        ConfigError: ``Unknown <what>(s) 'x'; valid <plural> are ...``
            (``plural`` defaults to ``<what>s``).

    Example:
        ```python
        from langchain_tokencal.config import check_names

        check_names({"cache_size": 1}, ["cache_size"], what="setting")
        ```
    """
    unknown = sorted(set(mapping) - set(valid))
    if unknown:
        msg = (
            f"Unknown {what}(s) {', '.join(map(repr, unknown))}; "
            f"valid {plural or what + 's'} are {', '.join(valid)}."
        )
        raise ConfigError(msg)


def _check_store_settings(every: object, key: object) -> None:
    """Refuse a snapshot interval that is not a count of events, or a bad key."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        msg = (
            "snapshot_every must be a number of events (0 for no snapshots), "
            f"got {every!r}."
        )
        raise ConfigError(msg)
    if key is not None and (not isinstance(key, str) or not key):
        # The value is a secret: its type only.
        msg = f"hash_key must be a non-empty string or None, got {type(key).__name__}."
        raise ConfigError(msg)


# Settings of the handler itself, beside those of `CounterConfig`.
HANDLER_SETTINGS: Final = ("store", "sync_interval", "stats_interval", "health")
# The environment variables of the settings: TOKENCAL_ plus the name in capitals.
ENV_PREFIX: Final = "TOKENCAL_"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def read_settings(source: str | os.PathLike[str]) -> dict[str, Any]:
    r"""The settings in a TOML, YAML or JSON file.

    A file may hold the settings at its top level or under a ``tokencal``
    table; a ``pyproject.toml`` under ``[tool.tokencal]``. YAML needs
    ``pyyaml`` (``pip install pyyaml``); TOML on Python 3.10 needs ``tomli``.

    Raises:
        ConfigError: The file is missing or unreadable, of another format, or
            does not hold a table of settings.

    Example:
        ```python
        import tempfile
        from pathlib import Path

        from langchain_tokencal.config import read_settings

        path = Path(tempfile.mkdtemp()) / "tokencal.toml"
        path.write_text("cache_size = 1000\nstore = 'memory://'\n")
        assert read_settings(path) == {"cache_size": 1000, "store": "memory://"}
        ```
    """
    path = Path(source)
    parse = _PARSERS.get(path.suffix.lower())
    if parse is None:
        msg = f"{path}: settings files are .toml, .yaml, .yml or .json"
        raise ConfigError(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        msg = f"cannot read the settings file {path}: {err}"
        raise ConfigError(msg) from err
    try:
        data: Any = parse(text)
    except ConfigError:
        raise
    except Exception as err:
        msg = f"cannot parse the settings file {path}: {err}"
        raise ConfigError(msg) from err
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("tokencal", {})
    if isinstance(data, dict) and isinstance(data.get("tokencal"), dict):
        data = data["tokencal"]
    if not isinstance(data, dict | None):
        msg = f"{path} must hold a table of settings, got {type(data).__name__}"
        raise ConfigError(msg)
    return dict(data or {})


def environment_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings given as ``TOKENCAL_<NAME>`` environment variables.

    Values are converted to each setting's type: integers, numbers of
    seconds, ``true``/``false``, ``none`` for an unset ``cache_ttl`` or
    ``stats_interval``, JSON for ``tokenizers`` and ``health``
    (``TOKENCAL_HEALTH='{"low_confidence": 0.8}'``). ``TOKENCAL_HASH_KEY``
    and ``TOKENCAL_STORE`` are read where they are used; they are included
    here too.

    Raises:
        ConfigError: A value that does not convert, naming the variable.

    Example:
        ```python
        from langchain_tokencal.config import environment_settings

        env = {"TOKENCAL_CACHE_SIZE": "1000", "TOKENCAL_OWN_TOKENIZERS": "no"}
        assert environment_settings(env) == {
            "cache_size": 1000,
            "own_tokenizers": False,
        }
        ```
    """
    environ = os.environ if environ is None else environ
    kinds = {f.name: str(f.type) for f in dataclasses.fields(CounterConfig)}
    kinds.update(
        {
            "store": "str",
            "sync_interval": "float",
            "stats_interval": "float | None",
            "health": "dict",
        }
    )
    found: dict[str, Any] = {}
    for name, kind in kinds.items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is None:
            continue
        try:
            found[name] = _convert(raw.strip(), kind)
        except ValueError as err:
            msg = f"{ENV_PREFIX}{name.upper()}={raw!r:.60}: {err}"
            raise ConfigError(msg) from err
    return found


def _convert(raw: str, kind: str) -> Any:
    """An environment variable's text as a value of the setting's type."""
    if "None" in kind and raw.lower() in {"", "none", "null"}:
        return None
    if kind.startswith("bool"):
        if raw.lower() not in _TRUE | _FALSE:
            msg = "expected true or false"
            raise ValueError(msg)
        return raw.lower() in _TRUE
    if kind.startswith("dict"):
        value = json.loads(raw)
        if not isinstance(value, dict):
            msg = "expected a JSON object"
            raise ValueError(msg)
        return value
    convert = {"int": int, "float": float}.get(kind.split(" ", maxsplit=1)[0])
    return convert(raw) if convert is not None else raw


def _toml(text: str) -> Any:
    # tomllib from Python 3.11; tomli, its backport, before.
    for name in ("tomllib", "tomli"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        return module.loads(text)
    msg = "reading TOML on Python 3.10 needs tomli: pip install tomli"
    raise ConfigError(msg)


def _yaml(text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415 - optional: pyyaml
    except ImportError as err:
        msg = "reading YAML settings needs pyyaml: pip install pyyaml"
        raise ConfigError(msg) from err
    return yaml.safe_load(text)


_PARSERS: Final[dict[str, Callable[[str], Any]]] = {
    ".toml": _toml,
    ".yaml": _yaml,
    ".yml": _yaml,
    ".json": json.loads,
}
