"""Exact counts for Mistral models: mistral-common's official request encoder.

`MistralCounter` turns the LangChain messages and tools of a call into a
mistral-common ``ChatCompletionRequest`` and counts what
``MistralTokenizer.encode_chat_completion`` makes of it, which is how
Mistral's servers (and vLLM's ``mistral`` tokenizer mode) tokenize a request.

The tokenizer is chosen per model family from the vocabularies mistral-common
bundles (never downloaded), following mistral-common's own table of dated
models; a newer family without a bundled vocabulary of its own gets the
nearest one (Tekken v3), and calibration learns what differs.

A request mistral-common refuses (it validates roles and their order, as the
servers do: a system message after an assistant turn, a tool result without
its call) is counted message by message instead, said once in the log; the
counter never raises into the caller.

Requires the ``[mistral]`` extra (``mistral-common`` with ``sentencepiece``),
imported lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
import threading
from array import array
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._counting.parts import message_parts
from langchain_tokencal._counting.rendered import RenderedCounter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.messages import BaseMessage

__all__ = ["INSTALL_HINT", "MistralCounter", "mistral_variant"]

logger = logging.getLogger(__name__)

INSTALL_HINT: Final = 'pip install "langchain-tokencal[mistral]"'

# Variants name a bundled tokenizer: (protocol version, Tekken vocabulary,
# multimodal). "v3-tekken" is Nemo's Tekken, the nearest bundled vocabulary
# for the Tekken families mistral-common ships no file for.
_DATED: Final = {
    # mistral-common's own table of dated API models.
    "ministral-8b-2410": "v3-tekken",
    "mistral-tiny-2312": "v2",
    "open-mistral-nemo-2407": "v3-tekken",
    "mistral-tiny-2407": "v3",
    "mistral-small-2312": "v2",
    "open-mixtral-8x22b-2404": "v3",
    "mistral-small-2402": "v2",
    "mistral-small-2409": "v3-tekken",
    "mistral-medium-2312": "v1",
    "mistral-large-2402": "v2",
    "mistral-large-2407": "v3",
    "mistral-large-2411": "v7",
    "pixtral-large-2411": "v7-mm",
    "codestral-2405": "v3",
    "codestral-mamba-2407": "v3",
    "pixtral-12b-2409": "v3-tekken-mm",
}
# Families by name prefix, longest first; the undated and "-latest" aliases
# and newer dated releases of each family.
_FAMILIES: Final = (
    ("open-mistral-nemo", "v3-tekken"),
    ("open-mixtral-8x22b", "v3"),
    ("open-mixtral-8x7b", "v2"),
    ("open-mistral-7b", "v2"),
    ("open-codestral-mamba", "v3"),
    ("codestral-mamba", "v3"),
    ("mistral-large-2402", "v2"),
    ("mistral-large-2407", "v3"),
    ("mistral-large-2411", "v7"),
    ("mistral-large-latest", "v7"),
    ("mistral-large", "v3-tekken"),
    ("pixtral-large", "v7-mm"),
    ("pixtral", "v3-tekken-mm"),
    ("mistral-medium-2312", "v1"),
    ("mistral-medium", "v3-tekken"),
    ("mistral-small-2312", "v2"),
    ("mistral-small-2402", "v2"),
    ("mistral-small", "v3-tekken"),
    ("mistral-tiny-2312", "v2"),
    ("mistral-tiny", "v3"),
    ("mistral-nemo", "v3-tekken"),
    ("codestral", "v3-tekken"),
    ("ministral", "v3-tekken"),
    ("magistral", "v3-tekken"),
    ("devstral", "v3-tekken"),
    ("voxtral", "v3-tekken"),
)
_PREFIXES: Final = ("mistralai/", "mistral/")
_CALL_ID: Final = re.compile(r"[A-Za-z0-9]{9}")
_ALPHABET: Final = string.digits + string.ascii_lowercase + string.ascii_uppercase
# Token ids kept per vocabulary for the texts encoded last (see `_IdMemo`).
_MEMO_TOKENS: Final = 1_000_000
_loaded: dict[str, tuple[Any, threading.Lock]] = {}
_loading = threading.Lock()


def mistral_variant(model: str) -> str | None:
    """The bundled tokenizer variant for a Mistral model name, else None.

    Accepts API names (``mistral-large-latest``), provider-prefixed ones
    (``mistralai/mistral-small-2503``) and Ollama tags (``ministral:8b``).

    Example:
        ```python
        from langchain_tokencal._counting.mistral import mistral_variant

        assert mistral_variant("mistral-large-2411") == "v7"
        assert mistral_variant("gpt-4o") is None
        ```
    """
    name = model.strip().lower()
    for prefix in _PREFIXES:
        name = name.removeprefix(prefix)
    name = name.split(":", 1)[0]
    if name in _DATED:
        return _DATED[name]
    for prefix, variant in _FAMILIES:
        if name.startswith(prefix):
            return variant
    return None


class _IdMemo:
    """A vocabulary whose ``encode`` remembers the ids of recent texts.

    The request encoder tokenizes each message's text on its own (and the
    counter has just tokenized the same texts for their records), so a
    whole request re-encodes only what is new: a chat's next call costs its
    new turn, not its history. Ids are kept as compact arrays, least
    recently used dropped past `_MEMO_TOKENS` tokens, and handed out as fresh
    lists (the encoder appends to them). It does not decode: the encoder
    decodes every request it encodes into ``Tokenized.text``, which a count
    never reads and which costs more than the encoding itself. Not
    thread-safe: used under the vocabulary's lock.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._ids: OrderedDict[str, array[int]] = OrderedDict()
        self._size = 0

    def encode(self, text: str, bos: bool, eos: bool) -> list[int]:  # noqa: FBT001 - the vocabulary's signature
        """The ids of ``text``, from the memo when neither BOS nor EOS is asked."""
        if bos or eos:
            return list(self._raw.encode(text, bos=bos, eos=eos))
        ids = self._ids.get(text)
        if ids is not None:
            self._ids.move_to_end(text)
            return ids.tolist()
        out = list(self._raw.encode(text, bos=False, eos=False))
        self._ids[text] = array("I", out)
        self._size += len(out)
        while self._size > _MEMO_TOKENS and self._ids:
            self._size -= len(self._ids.popitem(last=False)[1])
        return out

    def decode(self, tokens: list[int], **_: Any) -> str:
        """No text: only the encoder's ``Tokenized.text`` asks, never read."""
        del tokens
        return ""

    def __getattr__(self, name: str) -> Any:
        # Everything else (control tokens, ids of BOS and EOS) is the vocabulary's.
        return getattr(self._raw, name)


def _load(variant: str) -> tuple[Any, threading.Lock]:
    """The bundled `MistralTokenizer` of a variant and its lock, once per process.

    Counters of one variant share the tokenizer, its id memo and the lock
    that serializes them.
    """
    with _loading:
        found = _loaded.get(variant)
        if found is None:
            from mistral_common.tokens.tokenizers.mistral import (  # noqa: PLC0415
                MistralTokenizer,
            )

            version, _, rest = variant.partition("-")
            tekken, mm = "tekken" in rest, rest.endswith("mm")
            if version == "v1":
                tokenizer = MistralTokenizer.v1()
            elif version == "v2":
                tokenizer = MistralTokenizer.v2()
            elif version == "v3":
                tokenizer = MistralTokenizer.v3(is_tekken=tekken, is_mm=mm)
            else:
                tokenizer = MistralTokenizer.v7(is_mm=mm)
            instruct: Any = tokenizer.instruct_tokenizer  # its vocabulary is swapped
            instruct.tokenizer = _IdMemo(instruct.tokenizer)
            found = _loaded[variant] = (tokenizer, threading.Lock())
        return found


def _call_id(raw: str | None) -> str:
    """The tool-call id a Mistral client sends for ``raw``.

    Mistral accepts only ids of 9 letters or digits; langchain-mistralai
    replaces any other id by the leading 9 base-62 digits (``0-9a-zA-Z``) of
    its SHA-256, so the same id is derived here and counts the same.
    """
    if raw and _CALL_ID.fullmatch(raw):
        return raw
    value = int.from_bytes(hashlib.sha256((raw or "").encode()).digest(), "big")
    digits = ""
    while value:
        value, index = divmod(value, len(_ALPHABET))
        digits = _ALPHABET[index] + digits
    return digits[:9].rjust(9, "0")


def _arguments(text: str) -> str:
    """Tool-call arguments as a JSON string (an unparsable one as it is)."""
    return text or "{}"


def mistral_request(
    messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
) -> Any:
    """The mistral-common ``ChatCompletionRequest`` of LangChain messages.

    Roles as langchain-mistralai sends them: system and developer messages
    are system prompts, an empty assistant turn without tool calls is left
    out (Mistral rejects it), tool-call ids are made Mistral-shaped.
    Images are not sent (text only); calibration learns their cost.
    """
    from mistral_common.protocol.instruct import messages as mm  # noqa: PLC0415
    from mistral_common.protocol.instruct.request import (  # noqa: PLC0415
        ChatCompletionRequest,
    )
    from mistral_common.protocol.instruct.tool_calls import (  # noqa: PLC0415
        Function,
        FunctionCall,
        Tool,
        ToolCall,
    )

    out: list[Any] = []
    for message in messages:
        parts = message_parts(message)
        text = "".join(parts.texts)
        role = parts.role
        if role in {"system", "developer"}:
            out.append(mm.SystemMessage(content=text))
        elif role == "assistant" or parts.tool_calls:
            calls = [
                ToolCall(
                    id=_call_id(call_id),
                    function=FunctionCall(name=name, arguments=_arguments(arguments)),
                )
                for name, arguments, call_id in parts.tool_calls
            ]
            if text or calls:
                out.append(
                    mm.AssistantMessage(content=text or None, tool_calls=calls or None)
                )
        elif role in {"tool", "function"} or parts.tool_call_id is not None:
            out.append(
                mm.ToolMessage(
                    content=text,
                    tool_call_id=_call_id(parts.tool_call_id),
                    name=parts.name,
                )
            )
        else:
            out.append(mm.UserMessage(content=text))
    specs = [
        Tool(
            function=Function(
                name=str(fn.get("name") or ""),
                description=str(fn.get("description") or ""),
                parameters=fn.get("parameters") or {},
            )
        )
        for tool in tools
        if isinstance(fn := tool.get("function"), dict)
    ]
    return ChatCompletionRequest(messages=out, tools=specs or None)


class MistralCounter(RenderedCounter):
    """Exact counts with mistral-common's request encoder.

    Thread-safe: encoding is serialized by a lock per vocabulary
    (mistral-common does not promise its tokenizers are).

    Args:
        model: The Mistral model name (picks the tokenizer; see
            `mistral_variant`).
        provider: Recorded in ``info``.
        memo_size: Most messages memoized.

    Raises:
        ImportError: Without the ``[mistral]`` extra (the message has the fix).
        ValueError: If the name is not a Mistral model.

    Example:
        ```python
        from langchain_tokencal._counting.mistral import MistralCounter

        # counter = MistralCounter("mistral-large-latest")  # needs [mistral]
        ```
    """

    def __init__(
        self, model: str, *, provider: str | None = None, memo_size: int = 100_000
    ) -> None:
        """Load the family's bundled tokenizer (once per process)."""
        variant = mistral_variant(model)
        if variant is None:
            msg = f"{model!r} is not a Mistral model name"
            raise ValueError(msg)
        try:
            self._tok, self._lock = _load(variant)
        except ImportError as err:
            msg = f"Counting {model!r} exactly needs mistral-common: {INSTALL_HINT}"
            raise ImportError(msg) from err
        self._raw = self._tok.instruct_tokenizer.tokenizer
        self._warned = False
        self.variant = variant
        super().__init__(
            model, provider, tokenizer=f"mistral-common:{variant}", memo_size=memo_size
        )

    def _count_text(self, text: str) -> int:
        """Tokens of a text by the model's vocabulary, no BOS or EOS."""
        if not text:
            return 0
        with self._lock:
            return len(self._raw.encode(text, bos=False, eos=False))

    def _exact_total(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
    ) -> int:
        """Tokens of the encoded request; a refused one message by message."""
        try:
            request = mistral_request(messages, tools)
            with self._lock:
                return len(self._tok.encode_chat_completion(request).tokens)
        except Exception as err:  # noqa: BLE001 - odd input must not break a call
            if not self._warned:
                self._warned = True
                logger.info(
                    "%s: mistral-common refuses the request (%s: %.120s); "
                    "counting message by message",
                    self.info.model,
                    type(err).__name__,
                    err,
                )
            return self._by_message(messages, tools)

    def _by_message(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
    ) -> int:
        """BOS, each message's text and calls with two control tokens, tools."""
        total = 1
        for message in messages:
            parts = message_parts(message)
            total += 2 + self._count_text("".join(parts.texts))
            for name, arguments, call_id in parts.tool_calls:
                call = {"name": name, "arguments": arguments, "id": _call_id(call_id)}
                total += self._count_text(json.dumps(call, ensure_ascii=False))
        if tools:
            total += 2 + self._count_text(json.dumps(list(tools), ensure_ascii=False))
        return total
