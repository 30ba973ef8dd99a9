"""Message features: content classes, the packed record codec, feature views."""
