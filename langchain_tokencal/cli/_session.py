"""One command's hold on the store: its URL, a handler on it, models looked up.

Every subcommand but ``demo`` opens one `TokenCalibrationHandler` on the store
through `opened`, which checks the store can be reached before anything is
read and always closes (flushes) the handler, even on an error.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_tokencal._callbacks import TokenCalibrationHandler
from langchain_tokencal._providers import snapshot_of
from langchain_tokencal.errors import TokenCalError
from langchain_tokencal.storage import redact_url

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from langchain_tokencal._calibration import ModelStats
    from langchain_tokencal.cli._output import CliLog

__all__ = ["Context", "is_known", "opened", "stats_for"]


@dataclass(slots=True)
class Context:
    """The parsed command line, the CLI's log and the store URL of one command."""

    args: argparse.Namespace
    log: CliLog
    url: str = ""

    @property
    def shown(self) -> str:
        """The store URL with any password hidden."""
        return redact_url(self.url)

    def check_store(self, handler: TokenCalibrationHandler, when: str) -> None:
        """Sync with the store now; raise if it cannot be reached."""
        if not handler.flush():
            msg = (
                f"cannot reach the store {self.shown} {when}: {self.log.store_reason()}"
            )
            raise TokenCalError(msg)


@contextmanager
def opened(
    ctx: Context,
    make: Callable[[], TokenCalibrationHandler] | None = None,
) -> Iterator[TokenCalibrationHandler]:
    """A handler on the store, checked reachable, closed (flushed) at the end."""
    handler = make() if make else TokenCalibrationHandler(store=ctx.url)
    try:
        ctx.check_store(handler, "to load the calibration")
        yield handler
    finally:
        handler.close()


def is_known(model: str, models: Sequence[str]) -> bool:
    """The handler has a counter for ``model`` or a model it is a snapshot of."""
    return model in models or snapshot_of(model, models) is not None


def stats_for(stats: Mapping[str, ModelStats], model: str) -> ModelStats | None:
    """The statistics of ``model``, or of the model it is a dated snapshot of."""
    found = stats.get(model)
    if found is None:
        # A dated snapshot was learned under the model it belongs to.
        keys = [k for k in stats if is_known(model, [k])]
        found = stats[keys[0]] if keys else None
    return found
