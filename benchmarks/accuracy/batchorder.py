"""Batches that complete in a chosen order, and the order-independence check.

`CompletionOrder` makes the calls of one ``Runnable.batch`` finish in a given
order while LangChain runs them on its thread pool as usual: the hidden model
waits in `CompletionOrder.wait` until it is its call's turn, and the turn
passes on in this handler's ``on_llm_end``, which LangChain runs after the
handler under test's (handlers run in the order of the ``callbacks`` list).
So every batch is real (five threads, five ``on_chat_model_start`` in
whatever order the pool starts them) and the benchmark stays deterministic.

`order_check` plays the same batch in several completion orders, each with
a fresh handler, and compares what the handlers learned: the count of fixed
probe prompts afterwards.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, HumanMessage
from typing_extensions import override

from benchmarks.accuracy.providers import digest, make_model
from benchmarks.accuracy.sessions import BatchGroup, Pipeline
from langchain_tokencal import TokenCalibrationHandler

if TYPE_CHECKING:
    from collections.abc import Sequence
    from uuid import UUID

    from benchmarks.accuracy.corpus import Corpus
    from benchmarks.accuracy.providers import HiddenChatModel, ProviderSpec

__all__ = ["CompletionOrder", "order_check", "run_batch"]

_TIMEOUT = 60.0


class CompletionOrder(BaseCallbackHandler):
    """Lets the calls of a batch complete one by one, in a fixed order."""

    raise_error = True

    def __init__(self, order: Sequence[Sequence[BaseMessage]]) -> None:
        self._position = {digest(messages): i for i, messages in enumerate(order)}
        self._turn = 0
        self._cond = threading.Condition()

    def wait(self, messages: Sequence[BaseMessage]) -> None:
        """Block the calling model until this prompt's turn."""
        mine = self._position[digest(messages)]
        with self._cond:
            if not self._cond.wait_for(lambda: self._turn == mine, timeout=_TIMEOUT):
                msg = f"batch call {mine} never got its turn (at {self._turn})"
                raise RuntimeError(msg)

    def _advance(self) -> None:
        with self._cond:
            self._turn += 1
            self._cond.notify_all()

    @override
    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._advance()

    @override
    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._advance()


def run_batch(
    model: HiddenChatModel,
    handler: TokenCalibrationHandler,
    inputs: list[list[BaseMessage]],
    order: Sequence[int],
) -> list[Any]:
    """``model.batch(inputs)`` on LangChain's thread pool, completing in ``order``."""
    gate = CompletionOrder([inputs[i] for i in order])
    model.gate = gate.wait
    try:
        return model.batch(
            inputs,
            config={"callbacks": [handler, gate], "max_concurrency": len(inputs)},
        )
    finally:
        model.gate = None


def _orders(n: int, count: int, rng: random.Random) -> list[tuple[int, ...]]:
    orders = [tuple(range(n)), tuple(reversed(range(n)))]
    while len(orders) < count:
        perm = list(range(n))
        rng.shuffle(perm)
        if tuple(perm) not in orders:
            orders.append(tuple(perm))
    return orders


def order_check(
    spec: ProviderSpec, corpus: Corpus, *, seed: int, orders: int = 6, warm: int = 0
) -> dict[str, Any]:
    """Run one batch of five in ``orders`` completion orders; compare the learned state.

    With ``warm`` > 0, that many single calls of the same pipeline come first.
    The state is compared through ``count_messages`` and ``estimate()`` of
    three probes: the shared system prompt with a new user message, the same
    with a longer one, and a bare user message.
    """
    rng = random.Random(f"order:{seed}:{spec.model}:{warm}")
    group = BatchGroup(corpus, rng, "en", "ordercheck")
    prompts = group.next_batch() or []
    inputs = [p.messages for p in prompts]
    system = inputs[0][0]
    pipeline = Pipeline(corpus, rng, "en", "ordercheck-warm", turns=warm)
    pipeline.system = system
    warmups = [p.messages for _ in range(warm) if (p := pipeline.next_prompt())]
    probes = [
        [
            system,
            HumanMessage("Please handle this one: the invoice total looks wrong."),
        ],
        [system, HumanMessage(corpus.text("en", rng, 1200))],
        [HumanMessage("What is a token?")],
    ]
    states = []
    perms = _orders(len(inputs), orders, rng)
    # The first order once more, last: were it to differ, the state would
    # depend on more than the completion order (thread start order, say).
    for order in [*perms, perms[0]]:
        handler = TokenCalibrationHandler()
        handler.raise_error = True
        model = make_model(spec, corpus)
        for messages in warmups:
            model.invoke(messages, config={"callbacks": [handler]})
        run_batch(model, handler, inputs, order)
        state = []
        for probe in probes:
            est = handler.estimate(probe, model=spec.model)
            state.append(
                (handler.count_messages(probe, model=spec.model), est.low, est.high)
            )
        states.append({"order": list(order), "probes": state})
    distinct = {repr(s["probes"]) for s in states}
    return {
        "warm": warm,
        "orders": len(perms),
        "identical": len(distinct) == 1,
        "distinct_states": len(distinct),
        "repeatable": states[0]["probes"] == states[-1]["probes"],
        "states": states[:-1],
    }
