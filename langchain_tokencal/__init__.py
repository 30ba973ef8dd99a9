"""Accurate prompt token counts for LangChain chat models, learned from usage."""

from langchain_tokencal._calibration import (
    CalibratedCounter,
    ModelStats,
    TokenEstimate,
    create_counter,
)
from langchain_tokencal._callbacks import (
    TokenCalibrationHandler,
    get_tokencal_callback,
)
from langchain_tokencal._counting import (
    ApproximateCounter,
    CounterInfo,
    LocalCounter,
    OpenAICounter,
    TokenCounter,
    local_counter,
)
from langchain_tokencal._reporting import HealthIssue, HealthReport, HealthThresholds
from langchain_tokencal._usage import (
    SUPPORTED_PROVIDERS,
    TokenUsage,
    explain_usage,
    parse_usage,
)
from langchain_tokencal.config import CounterConfig
from langchain_tokencal.errors import (
    ConfigError,
    EncodingUnavailableError,
    TokenCalError,
    UnknownModelError,
    UnknownProviderError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "SUPPORTED_PROVIDERS",
    "ApproximateCounter",
    "CalibratedCounter",
    "ConfigError",
    "CounterConfig",
    "CounterInfo",
    "EncodingUnavailableError",
    "HealthIssue",
    "HealthReport",
    "HealthThresholds",
    "LocalCounter",
    "ModelStats",
    "OpenAICounter",
    "TokenCalError",
    "TokenCalibrationHandler",
    "TokenCounter",
    "TokenEstimate",
    "TokenUsage",
    "UnknownModelError",
    "UnknownProviderError",
    "UsageError",
    "__version__",
    "create_counter",
    "explain_usage",
    "get_tokencal_callback",
    "local_counter",
    "parse_usage",
]
