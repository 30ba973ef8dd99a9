"""Message classes by kind: how the counters dispatch on a message's class.

`kind_of` classifies a class once (`PLAIN`, `AI`, `TOOL`, `CHAT` or
`NOT_MESSAGE`) and records it in `KINDS`, in the class set of its kind and,
for a class whose role is fixed, in `FIXED_ROLES`: later dispatch is a set
membership test or a dict hit, never an ``isinstance`` against a pydantic
model. Thread-safe: the tables only grow, by single assignments and set
additions (a class classified twice gets the same answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "AI",
    "AI_CLASSES",
    "CHAT",
    "FIXED_ROLES",
    "KINDS",
    "NOT_MESSAGE",
    "PLAIN",
    "PLAIN_CLASSES",
    "RELEVANT_EXTRAS",
    "TOOL",
    "TOOL_CLASSES",
    "all_messages",
    "kind_of",
]

RELEVANT_EXTRAS: Final = frozenset(
    {"name", "__openai_role__", "tool_calls", "function_call"}
)
"""The ``additional_kwargs`` keys a count reads."""
NOT_MESSAGE: Final = -1
"""`kind_of` a class that is not a `BaseMessage`."""
PLAIN: Final = 0
"""A message class with a fixed role and no tool fields (human, system...)."""
AI: Final = 1
"""An `AIMessage` class."""
TOOL: Final = 2
"""A `ToolMessage` class."""
CHAT: Final = 3
"""A `ChatMessage` class (its role is a field)."""
KINDS: dict[type, int] = {}
# The classes of each kind seen so far, for `memo_lookup`'s dispatch (a set
# membership test is one bytecode; a dict.get is a method call).
PLAIN_CLASSES: set[type] = set()
AI_CLASSES: set[type] = set()
TOOL_CLASSES: set[type] = set()
# The role of each message class whose role is fixed (SystemMessage's holds
# unless additional_kwargs override it, which `plain_parts` checks first).
FIXED_ROLES: dict[type, str] = {}
_ROLE_CLASSES: Final = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (ToolMessage, "tool"),
    (FunctionMessage, "function"),
    (SystemMessage, "system"),
)


def kind_of(cls: type) -> int:
    """Classify a message class once (`NOT_MESSAGE`, `PLAIN`...); later, a dict hit.

    NB: ``isinstance`` against pydantic models runs pydantic's Python-level
    ``__instancecheck__`` (over 100 ns), too slow for a per-message hot path.
    """
    kind = KINDS.get(cls)
    if kind is None:
        if not issubclass(cls, BaseMessage):
            kind = NOT_MESSAGE
        elif issubclass(cls, ToolMessage):
            kind = TOOL
        elif issubclass(cls, AIMessage):
            kind = AI
        elif issubclass(cls, ChatMessage):
            kind = CHAT
        else:
            kind = PLAIN
        if kind not in (CHAT, NOT_MESSAGE):
            for base, role in _ROLE_CLASSES:
                if issubclass(cls, base):
                    FIXED_ROLES[cls] = role
                    break
        KINDS[cls] = kind
        by_kind = {PLAIN: PLAIN_CLASSES, AI: AI_CLASSES, TOOL: TOOL_CLASSES}
        if kind in by_kind:
            by_kind[kind].add(cls)
    return kind


def all_messages(items: Iterable[Any]) -> bool:
    """Whether every item is a `BaseMessage` (a class-cached ``isinstance``)."""
    kinds = KINDS
    # The distinct classes, collected in C: usually four or five.
    for cls in set(map(type, items)):
        kind = kinds.get(cls)
        if kind is None:
            kind = kind_of(cls)
        if kind == NOT_MESSAGE:
            return False
    return True
