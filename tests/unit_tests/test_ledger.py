"""Tests for the ledger: prefix hashes and the bounded maps of learned counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from langchain_tokencal._calibration.ledger import Ledger, LedgerStats, prefix_hashes

U64 = st.integers(min_value=0, max_value=2**64 - 1)
Remember = Callable[[Ledger, int, list[int], int], object]


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        """Start at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


def _replay(
    ledger: Ledger, tool_fingerprint: int, digests: list[int], tokens: int
) -> None:
    """Remember a prompt as the counter replays a ``prompt`` event: by `insert`."""
    prompt_hash = prefix_hashes(tool_fingerprint, digests)[-1]
    ledger.insert(tool_fingerprint, digests[0], digests[-1], prompt_hash, tokens)


def _observe_base(ledger: Ledger, tool_fingerprint: int, observed: float) -> None:
    """Learn a base cost as the counter does: blend, then store the blended value."""
    ledger.bases.put(tool_fingerprint, ledger.blended_base(tool_fingerprint, observed))


@pytest.fixture(
    params=[
        pytest.param(Ledger.record, id="record"),
        pytest.param(_replay, id="insert"),
    ]
)
def remember(request: pytest.FixtureRequest) -> Remember:
    """The two ways a reported prompt enters the ledger: learned, or replayed."""
    fn: Remember = request.param
    return fn


class TestPrefixHashes:
    """Rolling hashes identify a tool set plus every prefix of a prompt."""

    def test_known_values(self):
        """The hashes are pinned: persisted ledgers depend on them."""
        assert prefix_hashes(0, [1, 2, 3]) == [
            4052280938491492431,
            185400476689468499,
            9182509315579698717,
        ]
        assert prefix_hashes(12345, [2**63 + 7, 42]) == [
            17871043715975181492,
            12075875396953972053,
        ]

    def test_one_hash_per_message(self):
        """There is one hash per message and none for an empty prompt."""
        assert prefix_hashes(7, []) == []
        assert len(prefix_hashes(7, [5, 6, 7, 8])) == 4

    def test_order_matters(self):
        """Swapping two messages changes the hash of every prefix holding them."""
        ab = prefix_hashes(0, [11, 22])
        ba = prefix_hashes(0, [22, 11])
        assert ab[0] != ba[0]
        assert ab[1] != ba[1]

    def test_repeated_messages_are_distinct_prefixes(self):
        """The same message twice gives two different prefix hashes."""
        first, second = prefix_hashes(0, [9, 9])
        assert first != second

    def test_tool_set_changes_every_hash(self):
        """Another tool fingerprint gives different hashes for the same messages."""
        plain = prefix_hashes(0, [1, 2, 3])
        tooled = prefix_hashes(99, [1, 2, 3])
        assert all(a != b for a, b in zip(plain, tooled, strict=True))

    @given(st.integers(min_value=0, max_value=2**64 - 1), st.lists(U64, max_size=30))
    def test_prefix_of_a_prompt_has_the_prefix_hashes(self, fingerprint, digests):
        """Hashing a prefix gives the first hashes of the whole prompt."""
        whole = prefix_hashes(fingerprint, digests)
        for k in range(len(digests) + 1):
            assert prefix_hashes(fingerprint, digests[:k]) == whole[:k]

    @given(st.integers(min_value=0, max_value=2**64 - 1), st.lists(U64, max_size=30))
    def test_hashes_fit_in_64_bits(self, fingerprint, digests):
        """Every hash is an unsigned 64-bit integer."""
        assert all(0 <= h < 2**64 for h in prefix_hashes(fingerprint, digests))

    @given(st.lists(U64, min_size=2, max_size=10, unique=True))
    def test_reversal_changes_the_last_hash(self, digests):
        """Distinct messages in reverse order hash differently."""
        assert prefix_hashes(0, digests)[-1] != prefix_hashes(0, digests[::-1])[-1]


class TestAnchor:
    """The anchor of a prompt is its longest reported prefix."""

    def test_none_when_nothing_was_reported(self):
        """A ledger with no reports has no anchor."""
        assert Ledger(100).anchor(0, [1, 2]) is None

    def test_empty_prompt_has_no_anchor(self, remember: Remember):
        """A prompt without messages has no anchor."""
        ledger = Ledger(100)
        remember(ledger, 0, [1], 10)
        assert ledger.anchor(0, []) is None

    def test_whole_prompt_is_found(self, remember: Remember):
        """A reported prompt is its own anchor, with all its messages."""
        ledger = Ledger(100)
        remember(ledger, 0, [1, 2, 3], 42)
        assert ledger.anchor(0, [1, 2, 3]) == (3, 42)

    def test_extension_anchors_on_the_reported_prefix(self, remember: Remember):
        """A prompt that extends a reported one anchors on it."""
        ledger = Ledger(100)
        remember(ledger, 0, [1, 2], 30)
        assert ledger.anchor(0, [1, 2, 3, 4]) == (2, 30)

    def test_longest_wins(self, remember: Remember):
        """With several reported prefixes, the longest is the anchor."""
        ledger = Ledger(100)
        remember(ledger, 0, [1], 10)
        remember(ledger, 0, [1, 2, 3], 35)
        assert ledger.anchor(0, [1, 2, 3, 4]) == (3, 35)

    def test_other_tool_set_is_no_anchor(self, remember: Remember):
        """A prefix reported with other tools does not anchor."""
        ledger = Ledger(100)
        remember(ledger, 1, [1, 2], 30)
        assert ledger.anchor(2, [1, 2, 3]) is None

    def test_same_ends_with_other_messages_between_is_no_anchor(
        self, remember: Remember
    ):
        """Sharing the first and last message with a reported prompt is not enough."""
        ledger = Ledger(100)
        remember(ledger, 0, [1, 2, 3], 42)
        assert ledger.anchor(0, [1, 9, 3]) is None

    def test_rerecording_replaces_the_count(self, remember: Remember):
        """A newer report of the same prompt replaces the older count."""
        ledger = Ledger(100)
        remember(ledger, 0, [5], 10)
        remember(ledger, 0, [5], 12)
        assert ledger.anchor(0, [5]) == (1, 12)


class TestRecord:
    """record() keys a prompt by the rolling hash of its tool set and messages."""

    def test_returns_the_prompt_hash(self):
        """The returned key is the last prefix hash of the prompt."""
        assert Ledger(10).record(7, [1, 2, 3], 42) == prefix_hashes(7, [1, 2, 3])[-1]

    def test_prompt_without_messages_is_keyed_by_its_tool_set(self):
        """A prompt without messages is kept under its tool fingerprint."""
        ledger = Ledger(10)
        assert ledger.record(7, [], 42) == 7
        assert ledger.prompts.peek(7) == 42


class TestMessageCosts:
    """Per-message costs in the provider's tokens."""

    def test_unknown_message_has_no_cost(self):
        """A message never costed has no cost."""
        assert Ledger(10).message_cost(1) is None

    def test_cost_is_remembered(self):
        """A set cost is returned as set."""
        ledger = Ledger(10)
        ledger.set_message_cost(1, 12.5)
        assert ledger.message_cost(1) == 12.5

    def test_negative_cost_is_clamped(self):
        """A negative derived cost is stored as zero."""
        ledger = Ledger(10)
        ledger.set_message_cost(1, -3.0)
        assert ledger.message_cost(1) == 0.0

    def test_lookup_touches_no_statistics(self):
        """message_cost is a peek: it counts neither hits nor misses."""
        ledger = Ledger(10)
        ledger.set_message_cost(1, 4.0)
        ledger.message_cost(1)
        ledger.message_cost(2)
        stats = ledger.stats().messages
        assert (stats.hits, stats.misses) == (0, 0)


class TestBaseCost:
    """A tool set's fixed cost is a moving average of observations."""

    def test_unknown_tool_set_has_no_base(self):
        """A tool set never observed has no base cost."""
        assert Ledger(10).base_cost(7) is None

    def test_first_observation_is_taken_as_is(self):
        """The first observed base is the base."""
        ledger = Ledger(10)
        _observe_base(ledger, 7, 300.0)
        assert ledger.base_cost(7) == 300.0

    @pytest.mark.parametrize(
        ("observed", "blended"),
        [
            pytest.param(400.0, 330.0, id="towards-a-higher-one"),
            pytest.param(200.0, 270.0, id="towards-a-lower-one"),
            pytest.param(300.0, 300.0, id="unchanged-by-the-same"),
        ],
    )
    def test_later_observations_move_it_30_percent(self, observed, blended):
        """Each later observation moves the base 30% of the way towards it."""
        ledger = Ledger(10)
        _observe_base(ledger, 7, 300.0)
        _observe_base(ledger, 7, observed)
        assert ledger.base_cost(7) == pytest.approx(blended)

    def test_blending_alone_changes_nothing(self):
        """blended_base() only computes: the base changes when the value is stored."""
        ledger = Ledger(10)
        _observe_base(ledger, 7, 300.0)
        assert ledger.blended_base(7, 400.0) == pytest.approx(330.0)
        assert ledger.base_cost(7) == 300.0

    def test_tool_sets_are_independent(self):
        """Two tool sets keep separate bases."""
        ledger = Ledger(10)
        _observe_base(ledger, 1, 100.0)
        _observe_base(ledger, 2, 800.0)
        assert (ledger.base_cost(1), ledger.base_cost(2)) == (100.0, 800.0)

    @given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
    def test_base_stays_within_the_observed_range(self, observations):
        """The moving average never leaves the range of what was observed."""
        ledger = Ledger(10)
        for value in observations:
            _observe_base(ledger, 3, value)
        base = ledger.base_cost(3)
        assert base is not None
        assert min(observations) - 1e-6 <= base <= max(observations) + 1e-6


class TestBounds:
    """Every map is bounded by size and, optionally, by age."""

    def test_prompts_are_bounded(self):
        """No more than max_size prompts are kept; the oldest go first."""
        ledger = Ledger(max_size=3)
        for i in range(10):
            ledger.record(0, [i], i + 100)
        assert ledger.stats().prompts.size == 3
        assert ledger.anchor(0, [0]) is None
        assert ledger.anchor(0, [9]) == (1, 109)

    def test_recent_prompts_anchor_after_many_reports(self):
        """However many prompts were reported, the newest ones still anchor."""
        ledger = Ledger(max_size=4)
        for i in range(1000):
            ledger.record(i, [i, i + 1], i)
        assert [ledger.anchor(i, [i, i + 1, 0]) for i in range(996, 1000)] == [
            (2, i) for i in range(996, 1000)
        ]

    def test_messages_are_bounded(self):
        """No more than max_size message costs are kept."""
        ledger = Ledger(max_size=4)
        for i in range(20):
            ledger.set_message_cost(i, float(i))
        assert ledger.stats().messages.size == 4
        assert ledger.stats().messages.evictions == 16

    def test_bases_are_bounded_even_for_huge_sizes(self):
        """The tool-set map holds at most 4096 entries whatever max_size is."""
        assert Ledger(max_size=1_000_000).stats().bases.max_size == 4096
        assert Ledger(max_size=5).stats().bases.max_size == 5

    @given(st.integers(min_value=1, max_value=20), st.lists(U64, max_size=100))
    def test_size_never_exceeds_the_bound(self, max_size, keys):
        """Whatever is recorded, each map stays within max_size."""
        ledger = Ledger(max_size=max_size)
        for key in keys:
            ledger.record(key, [key], 1)
            ledger.set_message_cost(key, 1.0)
            _observe_base(ledger, key, 1.0)
        stats = ledger.stats()
        assert stats.prompts.size <= max_size
        assert stats.messages.size <= max_size
        assert stats.bases.size <= max_size

    def test_entries_expire_after_the_ttl(self):
        """With a TTL, every learned count disappears once it is older than the TTL."""
        clock = Clock()
        ledger = Ledger(max_size=10, ttl=60.0, clock=clock)
        ledger.record(0, [1], 42)
        ledger.set_message_cost(2, 5.0)
        _observe_base(ledger, 3, 300.0)
        clock.now = 59.9
        assert ledger.anchor(0, [1]) == (1, 42)
        assert ledger.message_cost(2) == 5.0
        assert ledger.base_cost(3) == 300.0
        clock.now = 60.0
        assert ledger.anchor(0, [1]) is None
        assert ledger.message_cost(2) is None
        assert ledger.base_cost(3) is None

    def test_rerecording_renews_the_ttl(self):
        """A prompt reported again lives a full TTL from the new report."""
        clock = Clock()
        ledger = Ledger(max_size=10, ttl=60.0, clock=clock)
        ledger.record(0, [1], 42)
        clock.now = 50.0
        ledger.record(0, [1], 42)
        clock.now = 100.0
        assert ledger.anchor(0, [1]) == (1, 42)

    def test_no_ttl_keeps_entries(self):
        """Without a TTL, entries stay however much time passes."""
        clock = Clock()
        ledger = Ledger(max_size=10, clock=clock)
        ledger.record(0, [1], 42)
        clock.now = 1e9
        assert ledger.anchor(0, [1]) == (1, 42)


class TestStats:
    """Ledger statistics."""

    def test_stats_snapshot(self):
        """stats() reports each map's size and the anchor's lookups."""
        ledger = Ledger(max_size=10)
        ledger.record(0, [1], 5)
        # Both prefixes end on a recorded last message: [1, 2, 1] misses, [1] hits.
        assert ledger.anchor(0, [1, 2, 1]) == (1, 5)
        stats = ledger.stats()
        assert isinstance(stats, LedgerStats)
        assert stats.prompts.size == 1
        assert stats.prompts.hits == 1
        assert stats.prompts.misses == 1
        assert stats.messages.size == 0

    @pytest.mark.parametrize(
        "digests",
        [
            pytest.param([7, 1], id="other-first-message"),
            pytest.param([1, 7], id="no-recorded-last-message"),
        ],
    )
    def test_prompt_that_extends_nothing_costs_no_lookup(self, digests):
        """A list that can extend no recorded prompt is refused before any lookup."""
        ledger = Ledger(max_size=10)
        ledger.record(0, [1, 2], 5)
        assert ledger.anchor(0, digests) is None
        stats = ledger.stats().prompts
        assert (stats.hits, stats.misses) == (0, 0)
