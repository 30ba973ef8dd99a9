"""Learning from reports: the ledger of exact facts, the regression, the counter."""

from langchain_tokencal._calibration.counter import CalibratedCounter
from langchain_tokencal._calibration.create import create_counter
from langchain_tokencal._calibration.estimate import Source, TokenEstimate
from langchain_tokencal._calibration.inbox import INBOX_CAPACITY, Inbox
from langchain_tokencal._calibration.learning import Observation, ReplyParts
from langchain_tokencal._calibration.plots import plot_calibration
from langchain_tokencal._calibration.stats import (
    ModelStats,
    stats_frame,
    stats_html,
    stats_rows,
)

__all__ = [
    "INBOX_CAPACITY",
    "CalibratedCounter",
    "Inbox",
    "ModelStats",
    "Observation",
    "ReplyParts",
    "Source",
    "TokenEstimate",
    "create_counter",
    "plot_calibration",
    "stats_frame",
    "stats_html",
    "stats_rows",
]
