"""``handler.trim``: what ``trim_messages`` keeps with a correct count, sooner.

``trim_messages`` counts about log2(n) candidate lists of one history, and a
counter reads each of their messages again (digest, memo lookup) on every
count. Here the history's features are read once; each candidate list is then
counted from those features by position, with the same arithmetic, the same
prompt rules (`plan_prompt`) and LangChain's own algorithm, so the result is
the list ``trim_messages`` returns with the handler's counter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.messages import trim_messages

from langchain_tokencal._callbacks.bound import BoundCounter, plan_prompt
from langchain_tokencal._counting import as_messages

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.messages import BaseMessage, SystemMessage

    from langchain_tokencal._calibration import CalibratedCounter

__all__ = ["trim_history"]

# Arguments that are this function's own, not trim_messages' to take.
_OWN = frozenset({"token_counter", "messages"})


def trim_history(
    counter: CalibratedCounter,
    messages: Sequence[Any],
    max_tokens: int,
    *,
    tools: Sequence[Any] | None,
    system: SystemMessage | None,
    conservative: bool,
    label: str,
    **trim_kwargs: Any,
) -> list[BaseMessage]:
    """Trim ``messages`` to ``max_tokens`` as ``trim_messages`` would.

    Args:
        counter: The model's calibrated counter.
        messages: The history (messages or message-like inputs).
        max_tokens: The budget.
        tools: Tools bound to the call (their cost is charged once).
        system: A system message the prompt carries outside ``messages``.
        conservative: Count the interval's high end.
        label: The model, for the fallback counter's repr.
        **trim_kwargs: ``trim_messages``' other arguments (``strategy``,
            ``include_system``, ``start_on``, ``end_on``, ``allow_partial``...).

    Raises:
        TypeError: If ``trim_kwargs`` holds ``token_counter``: the handler is
            the counter here.
    """
    clash = _OWN.intersection(trim_kwargs)
    if clash:
        msg = f"handler.trim counts itself; drop {', '.join(sorted(clash))}."
        raise TypeError(msg)
    history = list(as_messages(messages))
    known = [*history, system] if system is not None else history
    feats, tools_f = counter.prepare(known, tools)
    position = {id(m): i for i, m in enumerate(known)}
    # Lists holding copies (allow_partial cuts a message) count the slow way.
    slow = BoundCounter(
        lambda: counter, label, tools, system=system, conservative=conservative
    )

    if counter.local.renders_whole_prompt:
        # A template's fixed cost is the whole list's: each candidate renders.
        return trim_messages(
            history, max_tokens=max_tokens, token_counter=slow, **trim_kwargs
        )

    def count(listed: Sequence[BaseMessage]) -> int:
        plan = plan_prompt(listed, system)
        if plan is None or not plan[1]:
            return slow(listed)
        indices = [position.get(id(m), -1) for m in plan[0]]
        if -1 in indices:
            return slow(listed)
        batch = feats.take(indices)
        if conservative:
            return counter.estimate_features(batch, tools_f).high
        return counter.count_features(batch, tools_f)

    return trim_messages(
        history, max_tokens=max_tokens, token_counter=count, **trim_kwargs
    )
