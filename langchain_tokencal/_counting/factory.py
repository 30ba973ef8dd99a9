"""The counter factory: the right local counter for a model and provider."""

import logging
from collections.abc import Mapping

from langchain_tokencal._counting.approximate import ApproximateCounter
from langchain_tokencal._counting.hf_cache import tokenizer_dir
from langchain_tokencal._counting.local import LocalCounter
from langchain_tokencal._counting.openai import OpenAICounter
from langchain_tokencal._counting.openai_rules import encoding_for_model
from langchain_tokencal._providers import counts_with_openai_tokenizer
from langchain_tokencal.errors import EncodingUnavailableError, UnknownModelError

__all__ = ["local_counter"]

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def hf_counter(
    model: str, provider: str | None, tokenizers: Mapping[str, str], memo_size: int
) -> LocalCounter | None:
    """The exact template counter of a model found on disk, else None.

    No network: a repo id not in the local Hugging Face cache is not found.
    A model that would be exact but cannot be (no ``[hf]`` extra, no chat
    template) is said once per model in the log.
    """
    target = tokenizers.get(model, model)
    if "/" not in target:
        return None
    folder = tokenizer_dir(target)
    if folder is None:
        if model in tokenizers and model not in _warned:
            _warned.add(model)
            logger.warning(
                "tokenizer %r for %s not found on disk (local Hugging Face cache "
                "or folder); counting approximately",
                target,
                model,
            )
        return None
    try:
        from langchain_tokencal._counting.hf import (  # noqa: PLC0415 - optional extra
            HFTemplateCounter,
        )

        return HFTemplateCounter(model, folder, provider=provider, memo_size=memo_size)
    except Exception as err:  # noqa: BLE001 - any failure means "count as before"
        if model not in _warned:
            _warned.add(model)
            logger.warning(
                "%s has a tokenizer in %s but cannot be counted with it (%s); "
                'counting approximately. Fix: pip install "langchain-tokencal[hf]"',
                model,
                folder,
                err,
            )
        return None


def mistral_counter(
    model: str, provider: str | None, memo_size: int
) -> LocalCounter | None:
    """The exact counter of a Mistral model name, else None.

    Without the ``[mistral]`` extra a Mistral name counts as before, and the
    install hint is logged once per model.
    """
    from langchain_tokencal._counting.mistral import (  # noqa: PLC0415 - lazy
        MistralCounter,
        mistral_variant,
    )

    if mistral_variant(model) is None:
        return None
    try:
        return MistralCounter(model, provider=provider, memo_size=memo_size)
    except Exception as err:  # noqa: BLE001 - any failure means "count as before"
        if model not in _warned:
            _warned.add(model)
            logger.warning(
                "%s could be counted exactly with mistral-common but cannot be "
                '(%s); counting approximately. Fix: pip install "langchain-tokencal'
                '[mistral]"',
                model,
                err,
            )
        return None


def harmony_counter(
    model: str, provider: str | None, memo_size: int
) -> LocalCounter | None:
    """The exact harmony counter of a gpt-oss name, else None."""
    from langchain_tokencal._counting.harmony import (  # noqa: PLC0415 - lazy
        HarmonyCounter,
        is_gpt_oss,
    )

    if not is_gpt_oss(model):
        return None
    try:
        return HarmonyCounter(model, provider=provider, memo_size=memo_size)
    except RuntimeError:  # no o200k_base offline: approximate, as load_encoding says
        return None


def local_counter(
    model: str,
    provider: str | None = None,
    *,
    memo_size: int = 100_000,
    strict: bool = False,
    tokenizers: Mapping[str, str] | None = None,
    own_tokenizers: bool = True,
) -> LocalCounter:
    """Make the local counter for a model.

    Args:
        model: The model name.
        provider: ``openai`` or ``azure`` for an `OpenAICounter`; any other
            provider gets an `ApproximateCounter`; None decides by the model
            name (`encoding_for_model`).
        memo_size: Most messages memoized.
        strict: Refuse to count without the tiktoken encoding the counter
            needs, instead of approximating with character classes (for a
            deployment check: a counter that silently approximates is 15-25%
            off where it would be exact).
        tokenizers: Model names mapped to a Hugging Face repo id or a folder
            holding ``tokenizer.json`` (``{"llama3.1:8b":
            "meta-llama/Llama-3.1-8B-Instruct"}``), for names that are not
            repo ids.
        own_tokenizers: Count a model with its own tokenizer where one is on
            the machine: a Hugging Face model found in the local cache with
            its ``tokenizer.json`` and chat template (the ``[hf]`` extra), a
            Mistral model with mistral-common (the ``[mistral]`` extra), gpt-oss
            with tiktoken's harmony encoding. False counts them as before.

    Returns:
        The counter. It never raises for an unknown model: it approximates.

    Raises:
        EncodingUnavailableError: With ``strict=True``, if the encoding cannot
            be loaded (offline with no ``TIKTOKEN_CACHE_DIR`` holding it).

    Example:
        ```python
        from langchain_core.messages import trim_messages
        from langchain_tokencal._counting import local_counter

        counter = local_counter("claude-sonnet-4-5", "anthropic")
        history = [("user", "hi"), ("assistant", "hello"), ("user", "bye")]
        trim_messages(history, max_tokens=20, token_counter=counter, strategy="last")
        ```
    """
    counter = None
    if own_tokenizers:
        counter = hf_counter(model, provider, tokenizers or {}, memo_size)
        if counter is None:
            counter = mistral_counter(model, provider, memo_size)
        if counter is None:
            counter = harmony_counter(model, provider, memo_size)
    if counter is None:
        counter = _make(model, provider, memo_size)
    info = counter.info
    if strict and info.fallback:
        msg = (
            f"{info.reason}. Fix: set TIKTOKEN_CACHE_DIR to a folder holding the "
            "encoding files (tiktoken writes them there on its first online use), "
            "or drop strict=True to count approximately."
        )
        raise EncodingUnavailableError(msg)
    return counter


def _make(model: str, provider: str | None, memo_size: int) -> LocalCounter:
    """The counter for a model and provider, whether its encoding loads or not."""
    key = provider.strip().lower() if provider else None
    if key is not None and counts_with_openai_tokenizer(key):
        return OpenAICounter(model, provider=key, memo_size=memo_size)
    if key is None:
        if "gpt-oss" in model.lower():
            # Open weights in the harmony format, served by many hosts: OpenAI's
            # chat accounting does not apply, so it is not an exact count.
            return ApproximateCounter(model, memo_size=memo_size)
        try:
            encoding_for_model(model)
        except UnknownModelError:
            return ApproximateCounter(model, memo_size=memo_size)
        return OpenAICounter(model, provider=None, memo_size=memo_size)
    return ApproximateCounter(model, provider=key, memo_size=memo_size)
