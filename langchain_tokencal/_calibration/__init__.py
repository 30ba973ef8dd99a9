"""Learning from reports: the ledger of exact facts, the regression, the counter."""

from langchain_tokencal._calibration.counter import (
    CalibratedCounter,
    ModelStats,
    Observation,
    ReplyParts,
    TokenEstimate,
    create_counter,
)

__all__ = [
    "CalibratedCounter",
    "ModelStats",
    "Observation",
    "ReplyParts",
    "TokenEstimate",
    "create_counter",
]
