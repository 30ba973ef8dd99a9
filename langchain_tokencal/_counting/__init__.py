"""Local counting: the counter protocol, encodings, OpenAI accounting, message parts."""
