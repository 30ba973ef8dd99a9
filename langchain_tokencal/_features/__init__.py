"""Message features: content classes, the packed record codec, feature views."""

from langchain_tokencal._features.views import (
    CONTENT_CLASSES,
    N_FEATURES,
    NO_TOOLS,
    RECORD_HEAD,
    FeatureBatch,
    MessageFeatures,
    ToolFeatures,
    approx_tokens,
    class_chars,
    pack_record,
    split_tokens,
    text_classes,
)

__all__ = [
    "CONTENT_CLASSES",
    "NO_TOOLS",
    "N_FEATURES",
    "RECORD_HEAD",
    "FeatureBatch",
    "MessageFeatures",
    "ToolFeatures",
    "approx_tokens",
    "class_chars",
    "pack_record",
    "split_tokens",
    "text_classes",
]
