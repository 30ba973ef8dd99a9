"""What a calibrated counter learned, as events a store can log and replay.

Learning is additive: a report adds an observation to the regression, a count
to the ledger, a residual to the interval. So knowledge persists and spreads
between processes as an append-only log of `LearnEvent` records: each process
appends what it learned and replays what the others appended. Appends never
conflict, so concurrent writers lose nothing.

An event holds numbers, hashes, model names and rejection reasons; never
prompt text.

The kinds and their values, in order, are defined once, by `SCHEMA` (field
names; the named tuples below build them):

| kind | values |
|---|---|
| ``fit`` | the regression's feature vector (``x...``), then residual and local tokens |
| ``prompt`` | `Prompt`: tool-set fingerprint, first and last digest, hash, tokens |
| ``message`` | `Message`: message digest, cost, whether it is a reply, precision |
| ``base`` | `Base`: tool-set fingerprint, base cost, precision |
| ``error`` | `ErrorSample`: local and calibrated relative error; then residuals |
| ``residual`` | a relative residual alone (older logs; still read) |

An ``error`` event's residuals are the relative one (of the estimated part)
and the standardized one (over the count's predictive sd), when known, then
the count's situation (anchored, estimated from its start, new tool set).
| ``reply`` | a leftover behind the reply-cost correction |
| ``reject`` | `Reject`: the reason reports were not learned from, and how many |
| ``meta`` | the provider, then aliases of the model (read by the handler) |
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

from langchain_tokencal.errors import EventError

__all__ = [
    "EVENT_KINDS",
    "SCHEMA",
    "Base",
    "ErrorSample",
    "EventError",
    "LearnEvent",
    "Message",
    "Prompt",
    "Reject",
    "check_event",
    "check_values",
    "decode_event",
    "encode_event",
    "read_events",
    "write_events",
]

logger = logging.getLogger(__name__)

# First line of a calibration file written by `write_events`.
_FORMAT = "langchain-tokencal-calibration"
_VERSION = 1

# Trust limits for lines read from a store or a file. An event is a flat list
# holding one flat list, so anything nested deeper is hostile or corrupt; the
# size bound keeps a crafted line from costing the parser much.
MAX_LINE: Final = 64 * 1024
_MAX_DEPTH: Final = 2
# Largest token count (the bound reported usage gets, `parse_usage`), and the
# bound on relative errors and standardized residuals a replay accepts.
_MAX_TOKENS: Final = 10**9
_MAX_RATIO: Final = 1e6
_MAX_NAME: Final = 512
_HASH_RANGE: Final = (-(2**63), 2**64)


class Prompt(NamedTuple):
    """Values of a ``prompt`` event: one whole prompt's reported count."""

    tools: int
    first: int
    last: int
    hash: int
    tokens: int


class Message(NamedTuple):
    """Values of a ``message`` event: one message's learned cost."""

    digest: int
    cost: float
    reply: int  # 1 if the cost came from the reply's completion tokens
    # The cost's precision (1 / tokens squared) when it is provisional, split
    # out of a whole prompt and refined by later reports; 0 when it is firm.
    weight: float = 0.0


class Base(NamedTuple):
    """Values of a ``base`` event: a tool set's fixed cost beyond its messages."""

    tools: int
    cost: float
    weight: float = 0.0  # as Message.weight


class ErrorSample(NamedTuple):
    """The first values of an ``error`` event; a ``residual`` may follow."""

    local: float
    calibrated: float


class Reject(NamedTuple):
    """Values of a ``reject`` event: reports not learned from, by reason."""

    reason: str
    reports: int


# Field names per kind, in order. A name ending in "..." takes any number of
# values; one ending in "?" may be missing (older logs, or not known yet).
SCHEMA: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "fit": ("x...", "residual", "local"),
        "prompt": Prompt._fields,
        "message": (*Message._fields[:-1], f"{Message._fields[-1]}?"),
        "base": (*Base._fields[:-1], f"{Base._fields[-1]}?"),
        "error": (*ErrorSample._fields, "residual?", "z?", "situation?"),
        "residual": ("residual",),
        "reply": ("leftover",),
        "reject": (Reject._fields[0], f"{Reject._fields[1]}?"),
        "meta": ("provider?", "aliases..."),
    }
)
"""Every event kind and the names of its values: the one event schema."""

EVENT_KINDS: Final = frozenset(SCHEMA)
"""The kinds a log may hold; `decode_event` refuses any other."""


def _arity(fields: tuple[str, ...]) -> tuple[int, float]:
    """The fewest and most values a kind's fields admit."""
    required = sum(not f.endswith(("...", "?")) for f in fields)
    variadic = any(f.endswith("...") for f in fields)
    return required, math.inf if variadic else len(fields)


_ARITY: Final = {kind: _arity(fields) for kind, fields in SCHEMA.items()}


def check_values(kind: str, values: tuple[Value, ...]) -> None:
    """Refuse values whose number does not fit the kind's `SCHEMA` entry.

    Stores carry any well-formed event; a counter checks an event's shape
    against the schema before applying it (`decode_event` does not).

    Raises:
        EventError: On an unknown kind or a value count the kind does not admit.
    """
    arity = _ARITY.get(kind)
    if arity is None:
        msg = f"unknown event kind {kind!r}"
        raise EventError(msg)
    fewest, most = arity
    if not fewest <= len(values) <= most:
        msg = (
            f"a {kind} event takes {', '.join(SCHEMA[kind])}; got {len(values)} values"
        )
        raise EventError(msg)


Value = int | float | str


@dataclass(frozen=True, slots=True)
class LearnEvent:
    """One thing a counter learned, in a form any store can keep.

    Attributes:
        model: The model key the event belongs to.
        kind: One of `EVENT_KINDS`.
        values: Numbers (and, for ``reject`` and ``meta``, short strings).
        origin: The process or handler that learned it, so a process can skip
            its own events when it replays a shared log.
        at: Wall-clock time (seconds since the epoch) it was learned.
        seq: Its sequence number within ``origin`` (1, 2, ...), so that
            ``(origin, seq)`` identifies it and a store applies it once
            however often a push is retried; 0 when it has no identity
            (older logs), and then it is applied every time it is appended.

    Example:
        ```python
        from langchain_tokencal.events import LearnEvent, decode_event, encode_event

        event = LearnEvent("gpt-4o", "message", (1234, 17.5), "worker-1", 0.0)
        assert decode_event(encode_event(event)) == event
        ```
    """

    model: str
    kind: str
    values: tuple[Value, ...]
    origin: str
    at: float
    seq: int = 0

    @property
    def identity(self) -> tuple[str, int] | None:
        """``(origin, seq)``, or ``None`` for an event without a sequence number."""
        return (self.origin, self.seq) if self.seq > 0 else None


def encode_event(event: LearnEvent) -> str:
    """One compact JSON line for an event (its ``seq`` last, when it has one)."""
    row: list[object] = [event.model, event.kind, list(event.values), event.origin]
    row.append(event.at)
    if event.seq:
        row.append(event.seq)
    return json.dumps(
        row,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def decode_event(line: str | bytes) -> LearnEvent:
    """Parse a line written by `encode_event`.

    The line is checked before it is parsed: at most `MAX_LINE` bytes and no
    nesting deeper than an event's own, so a crafted line costs little and
    never exhausts the interpreter's recursion limit.

    Raises:
        EventError: If the line is not a well-formed event.
    """
    row = _parse(line)
    model, kind, values, origin, at, *rest = row
    seq = rest[0] if rest else 0
    if (
        not isinstance(model, str)
        or not isinstance(kind, str)
        or kind not in EVENT_KINDS
        or not isinstance(values, list)
        or not isinstance(origin, str)
        or isinstance(at, bool)
        or not isinstance(at, (int, float))
        or not math.isfinite(at)
        or isinstance(seq, bool)
        or not isinstance(seq, int)
        or not 0 <= seq < 2**63
    ):
        msg = f"malformed event: {str(row)[:80]!r}"
        raise EventError(msg)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            msg = f"malformed event value {v!r:.40}"
            raise EventError(msg)
        if isinstance(v, float) and not math.isfinite(v):
            msg = f"non-finite event value {v!r}"
            raise EventError(msg)
    return LearnEvent(model, kind, tuple(values), origin, float(at), seq)


def _parse(line: str | bytes) -> list[object]:
    """The JSON list of a line, within the size and depth limits."""
    if len(line) > MAX_LINE:
        msg = f"event line too long ({len(line)} > {MAX_LINE} characters)"
        raise EventError(msg)
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as err:
            msg = f"event line is not UTF-8: {err.reason}"
            raise EventError(msg) from err
    if line.count("[") + line.count("{") > _MAX_DEPTH and _depth(line) > _MAX_DEPTH:
        msg = f"malformed event: nested deeper than {_MAX_DEPTH}: {line[:80]!r}"
        raise EventError(msg)
    try:
        row = json.loads(line)
    except (ValueError, TypeError, RecursionError) as err:
        msg = f"not an event: {line[:80]!r}"
        raise EventError(msg) from err
    if not isinstance(row, list) or len(row) not in (5, 6):
        msg = f"malformed event: {line[:80]!r}"
        raise EventError(msg)
    return row


def _depth(line: str) -> int:
    """The deepest bracket nesting of a JSON text, outside its strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in line:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > _MAX_DEPTH:
                break  # deep enough to refuse: the rest need not be read
        elif char in "]}":
            depth -= 1
    return deepest


# What each kind's values may hold, position by position: "t" a token count
# (0..1e9), "c" a signed cost (|c| <= 1e9), "h" a 64-bit hash, "b" 0 or 1, "w"
# a weight (>= 0), "r" a ratio or residual (|r| <= 1e6), "n" a small count
# (0..1e9), "s" a short string; the last letter repeats for variadic kinds.
_RANGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "fit": "c",
        "prompt": "hhhht",
        "message": "hcbw",
        "base": "hcw",
        "error": "rrrrn",
        "residual": "r",
        "reply": "c",
        "reject": "sn",
        "meta": "s",
    }
)


def _check_value(code: str, v: Value) -> str | None:
    """Why ``v`` does not fit position code ``code``, or ``None``."""
    if code == "s":
        if not isinstance(v, str) or len(v) > _MAX_NAME:
            return "a short string"
        return None
    if isinstance(v, (bool, str)) or not isinstance(v, (int, float)):
        return "a number"
    if not math.isfinite(v):
        return "finite"
    fits = {
        "t": 0 <= v <= _MAX_TOKENS,
        "n": 0 <= v <= _MAX_TOKENS,
        "c": -_MAX_TOKENS <= v <= _MAX_TOKENS,
        "h": isinstance(v, int) and _HASH_RANGE[0] <= v < _HASH_RANGE[1],
        "b": v in (0, 1),
        "w": 0 <= v <= _MAX_RATIO,
        "r": -_MAX_RATIO <= v <= _MAX_RATIO,
    }
    return None if fits[code] else f"in range for {code!r}"


def check_event(event: LearnEvent) -> None:
    """Refuse an event from a store or a file that no counter could have learned.

    On top of `check_values` (the kind and the number of values), every value
    must be in range: token counts in ``[0, 1e9]``, hashes 64-bit integers,
    relative errors and residuals within ``1e6``, strings short; the model
    name and origin must be short strings that encode to UTF-8, and the model
    a key a counter uses (not empty, no surrounding whitespace).

    Raises:
        EventError: Naming the first value out of range.
    """
    for name in (event.model, event.origin):
        if not isinstance(name, str) or len(name) > _MAX_NAME or not _encodable(name):
            msg = (
                "an event's model and origin must be short UTF-8 text, "
                f"got {name!r:.80}"
            )
            raise EventError(msg)
    model = event.model
    if not model or model != model.strip():
        # Counters file events under model keys, which are stripped names.
        msg = (
            "an event's model must be a model key (stripped, not empty), "
            f"got {model!r:.80}"
        )
        raise EventError(msg)
    # Typed callers cannot pass anything else; a replayed or fuzzed one can.
    kind: object = event.kind
    given: object = event.values
    if not isinstance(kind, str) or not isinstance(given, tuple):
        msg = f"malformed event: kind {kind!r:.40}"
        raise EventError(msg)
    check_values(event.kind, event.values)
    codes = _RANGES[event.kind]
    for i, v in enumerate(event.values):
        problem = _check_value(codes[min(i, len(codes) - 1)], v)
        if problem is not None:
            msg = f"a {event.kind} event's value {i} must be {problem}, got {v!r:.40}"
            raise EventError(msg)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_events(path: str | os.PathLike[str], events: Iterable[LearnEvent]) -> int:
    """Write events to a calibration file (JSON lines), atomically.

    The file is written next to its destination and moved into place, so a
    crash mid-write leaves the previous file intact.

    Returns:
        The number of events written.

    Raises:
        EventError: If the file cannot be written (the OS reason is given).
    """
    target = Path(path)
    count = 0
    try:
        # 0700: a calibration file's folder is private like a store's.
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                header = {"format": _FORMAT, "version": _VERSION}
                out.write(json.dumps(header) + "\n")
                for event in events:
                    out.write(encode_event(event) + "\n")
                    count += 1
            Path(tmp).replace(target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        msg = f"cannot write calibration file {str(target)!r}: {err.strerror or err}"
        raise EventError(msg) from err
    return count


def read_events(
    path: str | os.PathLike[str], *, strict: bool = False
) -> list[LearnEvent]:
    """Read a calibration file written by `write_events`.

    Malformed lines are skipped with one warning that counts them; with
    ``strict``, one is an `EventError` (a truncated or damaged file).

    Raises:
        EventError: If the file is missing, unreadable, or not a calibration
            file (its first line names the format); with ``strict``, if a
            line is malformed.
    """
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or err
        msg = f"cannot read calibration file {str(source)!r}: {reason}"
        raise EventError(msg) from err
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        msg = f"{str(source)!r} is not a langchain-tokencal calibration file"
        raise EventError(msg)
    if header.get("version") != _VERSION:
        msg = (
            f"{str(source)!r} is calibration format version {header.get('version')!r}; "
            f"this version of langchain-tokencal reads version {_VERSION}"
        )
        raise EventError(msg)
    events: list[LearnEvent] = []
    bad = 0
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            events.append(decode_event(line))
        except EventError:
            bad += 1
    if bad and strict:
        msg = (
            f"{str(source)!r} has {bad} malformed line(s) (truncated or damaged?); "
            "nothing was read from it"
        )
        raise EventError(msg)
    if bad:
        logger.warning("skipped %d malformed line(s) in %s", bad, source)
    return events
