"""Usage reports: the normalized record, parsing LangChain objects and payloads."""
