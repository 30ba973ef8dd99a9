"""The tool sets agents and tool-bound one-shots bind, in OpenAI format.

Eleven sets of one to six tools, with what real schemas have: optional and
required properties, enums, defaults, arrays of scalars and of objects, nested
objects, a tool without parameters. A handler meets most of them in one run
(`workloads` cycles through them), so tool-set overheads must be learned per
set, not once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TOOLSETS", "toolset_name"]


def _fn(
    name: str, description: str, props: dict[str, Any], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    params: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        params["required"] = list(required)
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": params},
    }


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _i(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, **extra}


_DOCS = (
    _fn("search_docs", "Search the documentation index and return matching passages.", {
        "query": _s("Full-text query."),
        "top_k": _i("How many passages to return."),
        "language": _s("Language of the passages.", enum=["en", "zh", "ja", "ru"]),
    }, ("query",)),
    _fn("read_file", "Read a slice of a source file from the repository.", {
        "path": _s("Path relative to the repository root."),
        "start_line": _i("First line, 1-based."),
        "end_line": _i("Last line, inclusive."),
    }, ("path",)),
)  # fmt: skip
_ANALYTICS = (
    _fn("run_sql", "Run a read-only SQL query against the analytics warehouse.", {
        "query": _s("A single SELECT statement."),
        "database": _s("Target database.", enum=["analytics", "billing", "events"]),
        "limit": _i("Maximum rows."),
    }, ("query", "database")),
    _fn("lookup_status", "Describe an HTTP status code.", {"code": _i("The status code.")}, ("code",)),
    _fn("unicode_info", "Return Unicode properties of characters.", {
        "text": _s("Characters to describe."),
        "fields": {"type": "array", "description": "Properties to include.",
                   "items": {"type": "string", "enum": ["name", "category", "codepoint"]}},
    }, ("text",)),
)  # fmt: skip
_WEATHER = (
    _fn("get_weather", "Get the current weather for a city.", {
        "city": _s("City name, in any language."),
        "unit": _s("Temperature unit.", enum=["celsius", "fahrenheit"]),
    }, ("city",)),
)  # fmt: skip
_CALENDAR = (
    _fn("create_event", "Create a calendar event and invite people to it.", {
        "title": _s("Short title shown in the calendar."),
        "start": _s("Start time, ISO 8601 with offset."),
        "end": _s("End time, ISO 8601 with offset."),
        "attendees": {"type": "array", "description": "People to invite.", "items": {
            "type": "object", "properties": {
                "email": _s("Their address."),
                "optional": {"type": "boolean", "description": "Whether attendance is optional."},
            }, "required": ["email"]}},
        "recurrence": _s("How the event repeats.", enum=["none", "daily", "weekly", "monthly"], default="none"),
        "reminder_minutes": _i("Minutes before the start to remind.", default=10),
    }, ("title", "start", "end")),
    _fn("list_events", "List events between two times.", {
        "from": _s("Start of the window."), "to": _s("End of the window."),
    }, ("from", "to")),
    _fn("delete_event", "Delete an event by id.", {"event_id": _s("The event's id.")}, ("event_id",)),
)  # fmt: skip
_SHOP = (
    _fn("search_products", "Search the catalogue.", {
        "query": _s("What the customer is looking for."),
        "category": _s("Department.", enum=["books", "electronics", "garden", "kitchen", "toys"]),
        "price": {"type": "object", "description": "Price range in euros.", "properties": {
            "min": {"type": "number", "description": "Lowest price."},
            "max": {"type": "number", "description": "Highest price."},
        }},
        "sort": _s("Order of results.", enum=["relevance", "price_asc", "price_desc", "newest"], default="relevance"),
    }, ("query",)),
    _fn("get_product", "Fetch one product with stock and reviews.", {"product_id": _s("Catalogue id.")}, ("product_id",)),
    _fn("add_to_cart", "Put a product in the customer's cart.", {
        "product_id": _s("Catalogue id."), "quantity": _i("How many.", default=1),
    }, ("product_id",)),
)  # fmt: skip
_SUPPORT = (
    _fn("create_ticket", "Open a support ticket for the current customer.", {
        "subject": _s("One-line summary."),
        "body": _s("Full description of the problem, with steps to reproduce."),
        "priority": _s("How urgent it is.", enum=["low", "normal", "high", "urgent"]),
        "tags": {"type": "array", "items": {"type": "string"}, "description": "Free-form labels."},
    }, ("subject", "body")),
    _fn("get_ticket", "Read a ticket and its history.", {"ticket_id": _i("Ticket number.")}, ("ticket_id",)),
    _fn("escalate", "Hand a ticket to the second line.", {
        "ticket_id": _i("Ticket number."), "reason": _s("Why the first line cannot solve it."),
    }, ("ticket_id", "reason")),
)  # fmt: skip
_CODE = (
    _fn("run_python", "Run a Python snippet in a sandbox and return its stdout.", {
        "code": _s("The program."), "timeout_s": _i("Seconds before it is killed.", default=10),
    }, ("code",)),
    _fn("evaluate", "Evaluate an arithmetic expression exactly.", {"expression": _s("For example 2**64 / 3.")}, ("expression",)),
)  # fmt: skip
_TRAVEL = (
    _fn("search_flights", "Find flights between two airports on a date.", {
        "origin": _s("IATA code of the departure airport."),
        "destination": _s("IATA code of the arrival airport."),
        "date": _s("Departure date, YYYY-MM-DD."),
        "passengers": {"type": "object", "description": "Who travels.", "properties": {
            "adults": _i("Adults, 12 and over."), "children": _i("Children under 12."),
        }, "required": ["adults"]},
        "cabin": _s("Cabin class.", enum=["economy", "premium_economy", "business", "first"]),
    }, ("origin", "destination", "date")),
    _fn("book_flight", "Book a flight found by search_flights.", {
        "flight_id": _s("Id from the search results."),
        "travellers": {"type": "array", "description": "One entry per passenger.", "items": {
            "type": "object", "properties": {
                "given_name": _s("As on the passport."), "family_name": _s("As on the passport."),
                "birth_date": _s("YYYY-MM-DD."),
            }, "required": ["given_name", "family_name"]}},
    }, ("flight_id", "travellers")),
    _fn("get_booking", "Look up a booking by its reference.", {"reference": _s("Six-letter booking reference.")}, ("reference",)),
)  # fmt: skip
_OPS = (
    _fn("list_directory", "List the files of a directory on the server.", {
        "path": _s("Absolute path."), "recursive": {"type": "boolean", "description": "Descend into subdirectories."},
    }, ("path",)),
    _fn("get_logs", "Fetch recent log lines of a service.", {
        "service": _s("Systemd unit name."), "since": _s("Relative time such as 15m or 2h."),
        "level": _s("Lowest level to include.", enum=["debug", "info", "warning", "error"]),
        "limit": _i("Most lines.", default=200),
    }, ("service",)),
    _fn("restart_service", "Restart a service.", {
        "name": _s("Systemd unit name."), "force": {"type": "boolean", "description": "Kill it if it does not stop."},
    }, ("name",)),
)  # fmt: skip
_CRM = (
    _fn("find_contact", "Find contacts by name, email or company.", {"query": _s("Search text.")}, ("query",)),
    _fn("update_contact", "Change fields of a contact.", {
        "contact_id": _s("Contact id."),
        "fields": {"type": "object", "description": "Fields to set.", "properties": {
            "phone": _s("E.164 phone number."), "title": _s("Job title."),
            "address": {"type": "object", "properties": {
                "street": _s("Street and number."), "city": _s("City."), "country": _s("ISO 3166 code."),
            }},
        }},
    }, ("contact_id", "fields")),
    _fn("log_call", "Record a phone call with a contact.", {
        "contact_id": _s("Contact id."), "minutes": _i("Duration."), "notes": _s("What was said."),
    }, ("contact_id", "notes")),
    _fn("schedule_followup", "Schedule a follow-up task.", {
        "contact_id": _s("Contact id."), "due": _s("Due date."),
        "channel": _s("How to follow up.", enum=["call", "email", "meeting"]),
    }, ("contact_id", "due")),
    _fn("list_deals", "List open deals, optionally by stage.", {
        "stage": _s("Pipeline stage.", enum=["lead", "qualified", "proposal", "negotiation", "won", "lost"]),
        "owner": _s("Sales rep's email."),
    }),
    _fn("merge_contacts", "Merge duplicate contacts into one.", {
        "keep_id": _s("Contact to keep."),
        "merge_ids": {"type": "array", "items": {"type": "string"}, "description": "Contacts merged into it."},
    }, ("keep_id", "merge_ids")),
)  # fmt: skip
_TRANSLATE = (
    _fn("current_time", "Return the current UTC time.", {}),
    _fn("translate", "Translate text between languages.", {
        "text": _s("Text to translate."),
        "target": _s("Target language.", enum=["en", "fr", "de", "es", "zh", "ja", "ru", "ar", "hi"]),
        "formality": _s("Register of the translation.", enum=["default", "formal", "informal"], default="default"),
    }, ("text", "target")),
)  # fmt: skip

TOOLSETS: tuple[tuple[dict[str, Any], ...], ...] = (
    _DOCS,
    _ANALYTICS,
    _WEATHER,
    _CALENDAR,
    _SHOP,
    _SUPPORT,
    _CODE,
    _TRAVEL,
    _OPS,
    _CRM,
    _TRANSLATE,
)
_NAMES = (
    "docs",
    "analytics",
    "weather",
    "calendar",
    "shop",
    "support",
    "code",
    "travel",
    "ops",
    "crm",
    "translate",
)


def toolset_name(tools: list[dict[str, Any]] | None) -> str | None:
    """The name of a bound tool set (by its first tool), or None."""
    if not tools:
        return None
    first = tools[0]["function"]["name"]
    for name, ts in zip(_NAMES, TOOLSETS, strict=True):
        if ts[0]["function"]["name"] == first:
            return name
    return "other"
