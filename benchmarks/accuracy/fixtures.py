"""Fixed text the workloads need that no installed file provides.

The user-facing content of every prompt comes from the corpus; these are only
the short instructions an application or a user adds around it, the system
prompts, and the tool sets agents bind (OpenAI format, as ``bind_tools``
converts them).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ASKS", "PROFILES", "SYSTEMS", "TOOLSETS"]

# Content profile of a session, drawn uniformly from this list (so weighted).
PROFILES = (
    "en",
    "en",
    "en",
    "code",
    "code",
    "mixed",
    "mixed",
    "zh",
    "zh",
    "ja",
    "ru",
    "ar",
    "hi",
)
ASKS = (
    "Can you explain what the following means?",
    "Summarize this for me:",
    "Please review this and point out anything unclear.",
    "What are the key points here?",
    "Rewrite this more simply.",
    "Is there anything wrong with this?",
    "Translate the gist of this into plain English.",
    "Continue from here.",
)
SYSTEMS = (
    "You are a helpful assistant.",
    "You are a careful senior engineer. Answer concisely and cite the code you rely on.",
    "You are a support agent for a Linux distribution. Be precise; ask before assuming.",
    "You are a translator and technical writer. Keep the user's terminology.",
)
TOOLSETS: tuple[tuple[dict[str, Any], ...], ...] = (
    (
        {"type": "function", "function": {
            "name": "search_docs", "description": "Search the documentation index and return matching passages.",
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": "Full-text query."},
                "top_k": {"type": "integer", "description": "How many passages to return."},
                "language": {"type": "string", "enum": ["en", "zh", "ja", "ru"], "description": "Language of the passages."},
            }, "required": ["query"]}}},
        {"type": "function", "function": {
            "name": "read_file", "description": "Read a slice of a source file from the repository.",
            "parameters": {"type": "object", "properties": {
                "path": {"type": "string", "description": "Path relative to the repository root."},
                "start_line": {"type": "integer", "description": "First line, 1-based."},
                "end_line": {"type": "integer", "description": "Last line, inclusive."},
            }, "required": ["path"]}}},
    ),
    (
        {"type": "function", "function": {
            "name": "run_sql", "description": "Run a read-only SQL query against the analytics warehouse.",
            "parameters": {"type": "object", "properties": {
                "query": {"type": "string", "description": "A single SELECT statement."},
                "database": {"type": "string", "enum": ["analytics", "billing", "events"], "description": "Target database."},
                "limit": {"type": "integer", "description": "Maximum rows."},
            }, "required": ["query", "database"]}}},
        {"type": "function", "function": {
            "name": "lookup_status", "description": "Describe an HTTP status code.",
            "parameters": {"type": "object", "properties": {
                "code": {"type": "integer", "description": "The status code."},
            }, "required": ["code"]}}},
        {"type": "function", "function": {
            "name": "unicode_info", "description": "Return Unicode properties of characters.",
            "parameters": {"type": "object", "properties": {
                "text": {"type": "string", "description": "Characters to describe."},
                "fields": {"type": "array", "items": {"type": "string", "enum": ["name", "category", "codepoint"]}, "description": "Properties to include."},
            }, "required": ["text"]}}},
    ),
    (
        {"type": "function", "function": {
            "name": "get_weather", "description": "Get the current weather for a city.",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "description": "City name, in any language."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit."},
            }, "required": ["city"]}}},
    ),
)  # fmt: skip
