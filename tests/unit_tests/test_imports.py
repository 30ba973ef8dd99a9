"""The public API is pinned: adding or removing a name is a deliberate act."""

import importlib.metadata
import subprocess
import sys

import langchain_tokencal

EXPECTED_ALL = [
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


class TestPublicApi:
    """What `import langchain_tokencal` offers."""

    def test_all_is_pinned(self) -> None:
        """`__all__` lists exactly the expected names (ruff RUF022 keeps it sorted)."""
        assert langchain_tokencal.__all__ == EXPECTED_ALL

    def test_every_name_resolves(self) -> None:
        """Every name in `__all__` is importable from the package."""
        for name in EXPECTED_ALL:
            assert getattr(langchain_tokencal, name) is not None

    def test_version_matches_metadata(self) -> None:
        """`__version__` is the installed distribution's version."""
        assert langchain_tokencal.__version__ == importlib.metadata.version(
            "langchain-tokencal"
        )

    def test_handler_exposes_the_design_api(self) -> None:
        """The handler has the methods DESIGN.md promises."""
        handler = langchain_tokencal.TokenCalibrationHandler
        for name in ("count_messages", "estimate", "counter", "stats", "usage"):
            assert hasattr(handler, name)

    def test_errors_share_one_base(self) -> None:
        """Every exception the package defines derives from TokenCalError."""
        for name in EXPECTED_ALL:
            obj = getattr(langchain_tokencal, name)
            if isinstance(obj, type) and issubclass(obj, Exception):
                assert issubclass(obj, langchain_tokencal.TokenCalError)


class TestOptionalExtras:
    """Optional extras are imported only by the modules that need them."""

    def test_package_import_leaves_langchain_agents_unimported(self) -> None:
        """`import langchain_tokencal` does not import `langchain` (the [agents] extra)."""
        code = (
            "import sys, langchain_tokencal; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'langchain'))"
        )
        out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "[]"

    def test_middleware_without_langchain_names_the_extra(self) -> None:
        """Without `langchain` installed, the middleware module says what to install."""
        code = (
            "import sys; sys.modules['langchain'] = None; "
            "import langchain_tokencal.middleware"
        )
        out = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode != 0
        assert "pip install 'langchain-tokencal[agents]'" in out.stderr
