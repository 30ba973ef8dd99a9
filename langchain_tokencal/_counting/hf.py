"""Exact counts for Hugging Face models: ``tokenizer.json`` and the chat template.

`HFTemplateCounter` renders the prompt the way ``transformers``'
``apply_chat_template`` and vLLM render it (a sandboxed jinja2 environment,
``add_generation_prompt=True``, the special-token variables, ``tools=`` and
OpenAI-style message dicts with parsed tool-call arguments) and counts the
rendered text with the model's own ``tokenizers`` tokenizer, without adding
special tokens (the template writes them).

Memo: the rendered text is cut at the tokenizer's added tokens (which the
tokenizer splits on before anything else), and each piece's count is
memoized by its text, so a history whose messages were seen re-renders but
does not re-tokenize them. That is exact when pieces tokenize independently;
the counter checks it once on a probe conversation and otherwise tokenizes
the whole text each time (still exact, slower).

Requires the ``[hf]`` extra (``tokenizers``, ``jinja2``), imported lazily.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from langchain_tokencal._cache import TTLCache
from langchain_tokencal._counting.parts import message_parts
from langchain_tokencal._counting.rendered import RenderedCounter

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from langchain_core.messages import BaseMessage

__all__ = ["HFTemplateCounter", "load_template"]

logger = logging.getLogger(__name__)

INSTALL_HINT: Final = 'pip install "langchain-tokencal[hf]"'
_PIECES_KEPT: Final = 200_000
_PROBE: Final = (
    ("system", "Be brief."),
    ("user", "Hello there, what is 2 + 2?"),
    ("assistant", "4"),
    ("user", "写一个 Python 函数:\n```python\ndef f(x):\n    return x\n```"),
)


def _token_text(value: Any) -> str | None:
    """The text of a special token in ``tokenizer_config.json``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def load_template(folder: Path) -> tuple[str | None, dict[str, str]]:
    """The chat template and special-token variables of a tokenizer folder.

    The template is ``tokenizer_config.json``'s ``chat_template`` (the
    ``default`` one of a list), else ``chat_template.jinja`` beside it.
    """
    config: dict[str, Any] = {}
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        config = {}
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template}
        template = named.get("default") or next(iter(named.values()), None)
    if not isinstance(template, str):
        try:
            template = (folder / "chat_template.jinja").read_text("utf-8")
        except OSError:
            template = None
    variables = {
        key: text
        for key, value in config.items()
        if key.endswith("_token") and (text := _token_text(value)) is not None
    }
    return template, variables


def _environment() -> Any:
    """A jinja2 environment configured as ``transformers`` configures it."""
    from jinja2.ext import loopcontrols  # noqa: PLC0415 - optional extra
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: PLC0415

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    def tojson(
        value: Any,
        ensure_ascii: bool = False,  # noqa: FBT001, FBT002 - jinja filter signature
        indent: int | None = None,
        separators: Any = None,
        sort_keys: bool = False,  # noqa: FBT001, FBT002
    ) -> str:
        return json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            indent=indent,
            separators=separators,
            sort_keys=sort_keys,
        )

    def strftime_now(fmt: str) -> str:
        return datetime.now(tz=timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def _arguments(text: str) -> Any:
    """Tool-call arguments parsed, as vLLM passes them to templates."""
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return text


def message_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI-style message dicts, as chat templates expect them."""
    out: list[dict[str, Any]] = []
    for message in messages:
        parts = message_parts(message)
        role = "system" if parts.role == "developer" else parts.role
        item: dict[str, Any] = {"role": role, "content": "".join(parts.texts)}
        if parts.name:
            item["name"] = parts.name
        if parts.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call_id or "",
                    "type": "function",
                    "function": {"name": name, "arguments": _arguments(arguments)},
                }
                for name, arguments, call_id in parts.tool_calls
            ]
        if parts.tool_call_id is not None:
            item["tool_call_id"] = parts.tool_call_id
        out.append(item)
    return out


_Files = tuple[Any, Any, dict[str, Any], Any]
_files: dict[tuple[str, int, int], _Files] = {}
_files_lock = threading.Lock()


def _load(folder: Path) -> _Files:
    """Tokenizer, compiled template, variables and splitter of a folder, once.

    Loading a ``tokenizer.json`` takes a few hundred milliseconds; every
    counter of the process that uses the same files (same size and time)
    shares them (`tokenizers` tokenizers and jinja2 templates are thread-safe).

    Raises:
        ValueError: If the folder has no chat template.
    """
    from tokenizers import Tokenizer  # noqa: PLC0415 - optional extra

    path = folder / "tokenizer.json"
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _files_lock:
        found = _files.get(key)
        if found is not None:
            return found
        template, variables = load_template(folder)
        if template is None:
            msg = f"{folder} has no chat template (tokenizer_config.json)"
            raise ValueError(msg)
        tokenizer = Tokenizer.from_file(str(path))
        added = sorted(
            (t.content for t in tokenizer.get_added_tokens_decoder().values()),
            key=len,
            reverse=True,
        )
        split = (
            re.compile("(" + "|".join(map(re.escape, added)) + ")").split
            if added
            else None
        )
        found = _files[key] = (
            tokenizer,
            _environment().from_string(template),
            variables,
            split,
        )
        return found


class HFTemplateCounter(RenderedCounter):
    """Exact counts with a model's ``tokenizer.json`` and chat template.

    Thread-safe: jinja2 templates and ``tokenizers`` tokenizers are shareable
    and the piece memo locks its writes.

    Args:
        model: The model name (recorded in ``info``).
        folder: The folder holding ``tokenizer.json`` (and
            ``tokenizer_config.json`` with the chat template).
        provider: Recorded in ``info``.
        memo_size: Most messages memoized.

    Raises:
        ImportError: Without the ``[hf]`` extra (the message has the fix).
        ValueError: If the folder has no chat template.

    Example:
        ```python
        from langchain_tokencal._counting.hf import HFTemplateCounter

        # counter = HFTemplateCounter("org/model", folder)  # a snapshot folder
        ```
    """

    def __init__(
        self,
        model: str,
        folder: Path,
        *,
        provider: str | None = None,
        memo_size: int = 100_000,
    ) -> None:
        """Load the tokenizer and template, and check the piece memo is exact."""
        try:
            from tokenizers import Tokenizer  # noqa: PLC0415 - optional extra
        except ImportError as err:
            msg = f"Counting {model!r} exactly needs tokenizers: {INSTALL_HINT}"
            raise ImportError(msg) from err
        del Tokenizer  # imported to give the install hint; loaded below
        self._tokenizer, self._template, self._variables, self._split = _load(folder)
        self._pieces: TTLCache[str, int] = TTLCache(max_size=_PIECES_KEPT)
        super().__init__(
            model, provider, tokenizer=f"tokenizer.json:{folder}", memo_size=memo_size
        )
        self.segmented = self._split is not None and self._probe_segments()

    def _count_text(self, text: str) -> int:
        """Tokens of a text, special-token strings included, no BOS added."""
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _probe_segments(self) -> bool:
        """True if counting by pieces equals the whole count on a probe."""
        from langchain_core.messages import convert_to_messages  # noqa: PLC0415

        try:
            text = self.render(convert_to_messages(list(_PROBE)), None)
        except Exception:  # noqa: BLE001 - a template may refuse the probe
            return False
        whole = self._count_text(text)
        if whole != self._pieces_count(text):
            logger.info(
                "%s: the tokenizer does not split at its added tokens the way "
                "pieces are cut; tokenizing whole prompts",
                self.info.model,
            )
            return False
        return True

    def _pieces_count(self, text: str) -> int:
        """Tokens of a rendered text, piece by piece, each memoized by text."""
        assert self._split is not None  # noqa: S101 - only with added tokens
        total = 0
        get, put = self._pieces.get, self._pieces.put
        for piece in self._split(text):
            if not piece:
                continue
            count = get(piece)
            if count is None:
                count = self._count_text(piece)
                put(piece, count)
            total += count
        return total

    def render(
        self, messages: Sequence[BaseMessage], tools: Sequence[Any] | None
    ) -> str:
        """The prompt text the chat template makes of ``messages`` and tools."""
        return str(
            self._template.render(
                messages=message_dicts(messages),
                tools=list(tools) if tools else None,
                add_generation_prompt=True,
                **self._variables,
            )
        )

    def _exact_total(
        self, messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]]
    ) -> int:
        """Tokens of the rendered prompt."""
        text = self.render(messages, tools)
        if self.segmented:
            return self._pieces_count(text)
        return self._count_text(text)
