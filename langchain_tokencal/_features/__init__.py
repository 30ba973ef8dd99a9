"""Message features: content classes, the packed record codec, feature views."""

from langchain_tokencal._features.classes import (
    CHARS_PER_TOKEN,
    CONTENT_CLASSES,
    approx_tokens,
    class_chars,
    split_tokens,
    text_classes,
)
from langchain_tokencal._features.record import (
    HEAD_SIZE,
    RECORD_HEAD,
    pack_record,
    record_vector,
    slot_values,
)
from langchain_tokencal._features.views import (
    FEATURE_BIAS,
    FEATURE_CLASSES,
    FEATURE_IMAGE,
    FEATURE_TOOL_CALLS,
    FEATURE_TOOL_RESULT,
    N_FEATURES,
    NO_TOOLS,
    FeatureBatch,
    MessageFeatures,
    RecordFeatures,
    ToolFeatures,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "CONTENT_CLASSES",
    "FEATURE_BIAS",
    "FEATURE_CLASSES",
    "FEATURE_IMAGE",
    "FEATURE_TOOL_CALLS",
    "FEATURE_TOOL_RESULT",
    "HEAD_SIZE",
    "NO_TOOLS",
    "N_FEATURES",
    "RECORD_HEAD",
    "FeatureBatch",
    "MessageFeatures",
    "RecordFeatures",
    "ToolFeatures",
    "approx_tokens",
    "class_chars",
    "pack_record",
    "record_vector",
    "slot_values",
    "split_tokens",
    "text_classes",
]
