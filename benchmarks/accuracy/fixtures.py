"""Fixed text the workloads need that no installed file provides.

The user-facing content of every prompt comes from the corpus; these are only
the short instructions an application or a user adds around it, the system
prompts and the instructions of pipelines. The tool sets are in `toolsets`.
"""

from __future__ import annotations

__all__ = [
    "ASKS",
    "PERSONAS",
    "PIPELINE_TASKS",
    "PROFILES",
    "SYSTEMS",
    "TINY",
    "TINY_ASKS",
]

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
# Tiny prompts (a few tokens): what chat front-ends, routers and health checks send.
TINY = (
    "hi",
    "Hello!",
    "thanks",
    "ok, go on",
    "What time is it in Tokyo?",
    "Say yes or no.",
    "2+2?",
    "Translate 'good morning' into French.",
    "Is this spam: WIN A FREE PHONE",
    "ping",
    "Give me one word for happy.",
    "Capital of Peru?",
    "Summarize: the build is green.",
    "Classify the sentiment: I love it",
    "Fix the typo: recieve",
    "Reply with OK.",
)
# Short instructions tiny prompts put before a few words of the corpus.
TINY_ASKS = (
    "Define:",
    "Translate into German:",
    "Fix the grammar:",
    "Is this polite?",
    "Classify:",
    "One synonym for",
    "Spell out:",
    "Tag the language:",
)
# Instructions of single-turn pipelines (classification, extraction, review):
# the fixed part of a shared system prompt; `sessions` adds worked examples
# drawn from the corpus, so each pipeline's prompt is a few hundred to a few
# thousand tokens.
PIPELINE_TASKS = (
    (
        "You are the triage step of a support pipeline. Read the customer's message and "
        "answer with one JSON object with the keys category, urgency (1-5), language and "
        "summary (one sentence, English). Categories: billing, outage, bug, how-to, "
        "account, other. Never answer the customer directly; never invent facts that are "
        "not in the message."
    ),
    (
        "You extract structured data for a search index. For the document the user sends, "
        "list the people, organisations, products and dates it mentions, each with the "
        "exact span of text it comes from. Output JSON lines only. If a field is unknown, "
        "leave it out rather than guessing."
    ),
    (
        "You are a translation memory assistant. Translate the user's text into English, "
        "keeping placeholders such as %s, {name} and <b> tags exactly as they are. Keep the "
        "register of the source. Output only the translation."
    ),
    (
        "You review code changes for a platform team. Point out bugs first, then risky "
        "behaviour, then style, each as a bullet with the line it concerns. Be brief; do "
        "not repeat the code back. Say 'LGTM' if there is nothing to report."
    ),
)
PERSONAS = (
    "You are a meticulous archivist",
    "You are a friendly tutor for adult learners",
    "You are an on-call site reliability engineer",
    "You are a contract lawyer reviewing licences",
    "You are a data journalist",
    "You are a product manager writing release notes",
)
