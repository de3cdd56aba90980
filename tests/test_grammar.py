"""Grammar-constrained decoding: an untrained random model still writes only valid weeks."""

import datetime as dt
import itertools

import pytest
from tiny_lm import build_tiny_model

from behaviorflow.behaviorgen.generate import parse_response
from behaviorflow.behaviorgen.prompts import WeekRequest
from behaviorflow.lm.backends import BackendError, Sampling
from behaviorflow.lm.convert import embedded_gguf
from behaviorflow.lm.grammar import EventGrammar
from behaviorflow.lm.local import TransformersBackend

ZONES = ("z1", "z2", "z10", "z_other")  # z1 is a prefix of z10: the trie must allow both
BEHAVIORS = ("music", "mus", "messaging", "email")
MONDAY = dt.date(2024, 4, 29)


@pytest.fixture(scope="module")
def random_backend(tmp_path_factory):
    return TransformersBackend(build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", seed=5), device="cpu",
                               threads=2)


def _parse(text, weeks):
    return parse_response(text, WeekRequest("u", MONDAY, weeks), set(ZONES), set(BEHAVIORS))


@pytest.mark.parametrize("weeks", [1, 2])
def test_random_model_under_the_grammar_writes_only_valid_weeks(random_backend, weeks):
    days = tuple(d.weekday() for d in WeekRequest("u", MONDAY, weeks).days)
    grammar = EventGrammar(days, ZONES, BEHAVIORS, slot_minutes=30, max_per_day=3)
    hot = Sampling(temperature=1.5, top_p=1.0, max_new_tokens=300 * weeks, grammar=grammar)
    msgs = [[{"role": "user", "content": f"week of user {i}"}] for i in range(6)]
    out = random_backend.complete_batch([(m, hot, i) for i, m in enumerate(msgs)])
    for completion in out:
        parsed = _parse(completion.text, weeks)
        assert parsed.valid, (parsed.error, completion.text)
        written = [day for day, _ in itertools.groupby(e[0] for e in parsed.events)]
        assert written == WeekRequest("u", MONDAY, weeks).days  # every requested day, in order, none skipped
        per_day = [len(list(g)) for _, g in itertools.groupby(e[0] for e in parsed.events)]
        assert max(per_day) <= 3
        assert all(minutes % 30 == 0 for _, minutes, _, _ in parsed.events)
        assert completion.finish_reason == "stop"
    # without the grammar, the same random model writes noise
    free = random_backend.complete_batch([(m, Sampling(1.5, 1.0, 120), i) for i, m in enumerate(msgs)])
    assert not any(_parse(c.text, weeks).valid for c in free)


def _line_tokens(backend, grammar):
    from behaviorflow.lm.grammar import EventLogitsProcessor

    return EventLogitsProcessor(grammar, backend.tokenizer, 0, 10_000).line_tokens


def test_a_small_token_budget_still_covers_every_day_and_ends_at_a_line_boundary(random_backend):
    grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 48)
    budget = 7 * _line_tokens(random_backend, grammar) + 1 + 20  # one line a day, and a little more
    tight = Sampling(temperature=1.0, top_p=1.0, max_new_tokens=budget, grammar=grammar)
    out = random_backend.complete_batch([([{"role": "user", "content": "go"}], tight, s) for s in range(4)])
    for completion in out:
        assert completion.completion_tokens <= budget and completion.finish_reason == "stop"
        parsed = _parse(completion.text, 1)
        assert parsed.valid and len({e[0] for e in parsed.events}) == 7, completion.text
    (too_small,) = random_backend.complete_batch([([{"role": "user", "content": "go"}],
                                                   Sampling(1.0, 1.0, budget - 21, grammar), 0)])
    assert isinstance(too_small, BackendError) and "raise generation.behaviorgen.sampling.max_new_tokens" in str(
        too_small)


def test_per_day_caps_hold_for_each_day(random_backend):
    caps = (2, 1, 3, 1, 2, 1, 1)
    grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, caps)
    hot = Sampling(temperature=1.5, top_p=1.0, max_new_tokens=600, grammar=grammar)
    out = random_backend.complete_batch([([{"role": "user", "content": f"user {s}"}], hot, s) for s in range(6)])
    counts = []
    for completion in out:
        parsed = _parse(completion.text, 1)
        assert parsed.valid, completion.text
        per_day = [len(list(g)) for _, g in itertools.groupby(e[0] for e in parsed.events)]
        assert len(per_day) == 7 and all(n <= c for n, c in zip(per_day, caps)), per_day
        counts.append(per_day)
    assert any(n[2] > 1 for n in counts)  # a day's own cap, not the smallest one, bounds it


def test_max_run_stops_a_behaviour_repeating_within_a_day(random_backend):
    runs = {}
    for max_run in (0, 1):
        grammar = EventGrammar(tuple(range(7)), ZONES, ("music", "email"), 30, 6, max_run)
        hot = Sampling(temperature=1.5, top_p=1.0, max_new_tokens=900, grammar=grammar)
        out = random_backend.complete_batch([([{"role": "user", "content": f"u{s}"}], hot, s) for s in range(6)])
        longest = 0
        for completion in out:
            parsed = _parse(completion.text, 1)
            assert parsed.valid, completion.text
            for _, day in itertools.groupby(parsed.events, key=lambda e: e[0]):
                longest = max(longest, max(len(list(g)) for _, g in itertools.groupby(e[3] for e in day)))
        runs[max_run] = longest
    assert runs[1] == 1 and runs[0] > 1  # without the limit the random model does repeat
    with pytest.raises(ValueError, match="per-day caps for 7 requested days"):
        from behaviorflow.lm.grammar import EventLogitsProcessor

        EventLogitsProcessor(EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, (2, 2)),
                             random_backend.tokenizer, 0, 600)


def _hot_weeks(backend, grammar, tokens=1200):
    """Six weeks of the random model at temperature 1.5 under `grammar`, each parsed (and valid)."""
    hot = Sampling(temperature=1.5, top_p=1.0, max_new_tokens=tokens, grammar=grammar)
    out = backend.complete_batch([([{"role": "user", "content": f"u{s}"}], hot, s) for s in range(6)])
    weeks = [_parse(c.text, 1) for c in out]
    assert all(w.valid for w in weeks), [c.text for c, w in zip(out, weeks) if not w.valid]
    return [w.events for w in weeks]


def test_seeded_quotas_round_each_share_to_a_neighbour_without_bias():
    """Unbiased rounding: each option gets the floor or ceiling of its exact share, the total is the
    lines asked, the mean over seeds is the exact share (largest remainder drops a share under half a
    line every time), and a seed gives the same quotas again."""
    import numpy as np

    from behaviorflow.lm.grammar import quotas

    mix = (("music", 50), ("email", 30), ("maps", 12), ("news", 5), ("games", 3))
    vocabulary = ("music", "email", "maps", "news", "games")
    exact = {o: 10 * w / 100 for o, w in mix}
    assert quotas(mix, vocabulary, 10)["games"] == 0  # largest remainder: 0.3 of a line, never drawn
    draws = [quotas(mix, vocabulary, 10, np.random.default_rng(seed)) for seed in range(2000)]
    for q in draws[:50]:
        assert sum(q.values()) == 10 and list(q) == list(vocabulary)
        assert all(int(exact[o]) <= n <= int(exact[o]) + 1 for o, n in q.items())
    for o in vocabulary:
        assert np.mean([q[o] for q in draws]) == pytest.approx(exact[o], abs=0.03)
    assert quotas(mix, vocabulary, 10, np.random.default_rng(7)) == quotas(mix, vocabulary, 10, np.random.default_rng(7))


def test_mixes_share_the_lines_out_in_proportion_and_leave_out_the_unweighted(random_backend):
    from behaviorflow.lm.grammar import quotas

    assert quotas((("music", 3), ("email", 1)), BEHAVIORS, 28) == {"music": 21, "email": 7}
    assert quotas((("a", 1), ("b", 1), ("c", 1)), ("a", "b", "c"), 4) == {"a": 2, "b": 1, "c": 1}  # largest remainder
    assert quotas((("music", 2), ("gone", 5)), BEHAVIORS, 3) == {"music": 3}  # outside the vocabulary: ignored
    counts = {}
    for floors in (1, 4):
        grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 4, max_run=1, min_per_day=floors,
                               behavior_mix=(("music", 3), ("email", 1)), zone_mix=(("z10", 1), ("z2", 1)))
        counts[floors] = []
        for events in _hot_weeks(random_backend, grammar):
            assert {e[3] for e in events} <= {"music", "email"}  # `mus`, `messaging`: no weight
            assert {e[2] for e in events} <= {"z10", "z2"}
            counts[floors].append(tuple(sum(e[i] == v for e in events)
                                        for i, v in ((3, "music"), (3, "email"), (2, "z10"))))
    # every day filled: the week's 28 lines are exactly the quotas (21 music, 7 email; 14 in z10)
    assert set(counts[4]) == {(21, 7, 14)}
    assert all(m <= 21 and e <= 7 and z <= 14 for m, e, z in counts[1])
    with pytest.raises(ValueError, match="no option of the vocabulary"):
        quotas((("gone", 1),), BEHAVIORS, 5)


def test_hour_mix_keeps_each_hour_to_its_quota_while_times_move_forward(random_backend):
    hours = {}
    for mix in ((), (("7", 1), ("20", 1))):
        grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 4, hour_mix=mix)
        hours[mix] = [[m // 60 for _, m, _, _ in events] for events in _hot_weeks(random_backend, grammar)]
    assert len({h for week in hours[()] for h in week}) > 6  # unmixed: the random model's hours scatter
    for week in hours[(("7", 1), ("20", 1))]:  # 28 lines: 14 a quota
        assert week.count(7) <= 14 and week.count(20) <= 14 and set(week) <= {7, 20}
    # a day past the last hour with quota left ends there rather than spend an hour without quota
    grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 6, hour_mix=(("7", 1),))
    out = random_backend.complete_batch([([{"role": "user", "content": "x"}],
                                          Sampling(1.5, 1.0, 1200, grammar=grammar), 2)])
    parsed = _parse(out[0].text, 1)
    assert parsed.valid and {m // 60 for _, m, _, _ in parsed.events} == {7}


def test_floors_equal_to_caps_give_each_day_exactly_its_drawn_length(random_backend):
    caps = (2, 3, 1, 4, 2, 2, 3)
    lengths = {}
    for floors in (1, caps):
        grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, caps, min_per_day=floors)
        hot = Sampling(temperature=1.5, top_p=1.0, max_new_tokens=1000, grammar=grammar)
        out = random_backend.complete_batch([([{"role": "user", "content": f"u{s}"}], hot, s) for s in range(6)])
        lengths[floors] = []
        for completion in out:
            parsed = _parse(completion.text, 1)
            assert parsed.valid, completion.text
            lengths[floors].append(tuple(len(list(g)) for _, g in itertools.groupby(e[0] for e in parsed.events)))
    assert set(lengths[caps]) == {caps}
    assert any(n != caps for n in lengths[1])  # without floors the random model ends some days early
    # with an hour mix too: no day's time jumps so late that the hours left cannot hold its floor
    spread = tuple((str(h), 1) for h in range(6, 23))  # 17 hours, one line each: exactly the caps' total
    grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, caps, min_per_day=caps, hour_mix=spread)
    out = random_backend.complete_batch([([{"role": "user", "content": f"u{s}"}],
                                          Sampling(1.5, 1.0, 1000, grammar=grammar), s) for s in range(6)])
    for completion in out:
        parsed = _parse(completion.text, 1)
        assert tuple(len(list(g)) for _, g in itertools.groupby(e[0] for e in parsed.events)) == caps
        assert sorted(m // 60 for _, m, _, _ in parsed.events) == list(range(6, 23))
    # a budget too small for the floors: every day still gets a line and the response ends cleanly
    grammar = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, caps, min_per_day=caps)
    small = 7 * _line_tokens(random_backend, grammar) + 1 + 30
    out = random_backend.complete_batch([([{"role": "user", "content": "x"}],
                                          Sampling(1.5, 1.0, small, grammar=grammar), 3)])
    parsed = _parse(out[0].text, 1)
    assert parsed.valid and out[0].finish_reason == "stop", out[0].text


def test_grammar_is_part_of_the_cache_key():
    from behaviorflow.lm.backends import LLMCache

    msgs = [{"role": "user", "content": "x"}]
    g1 = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 10)
    g2 = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 11)
    keys = {LLMCache.key({"m": 1}, msgs, Sampling(grammar=g), 0) for g in (None, g1, g2)}
    assert len(keys) == 3


def test_the_grammars_code_is_part_of_a_constrained_calls_key(monkeypatch):
    """An edit to the grammar's code must not return answers decoded under the old code from the cache."""
    import behaviorflow.lm.backends as backends

    msgs = [{"role": "user", "content": "x"}]
    g = EventGrammar(tuple(range(7)), ZONES, BEHAVIORS, 30, 10)
    before = [backends.LLMCache.key({"m": 1}, msgs, Sampling(grammar=x), 0) for x in (g, None)]
    monkeypatch.setattr(backends, "grammar_code", lambda: "edited")
    after = [backends.LLMCache.key({"m": 1}, msgs, Sampling(grammar=x), 0) for x in (g, None)]
    assert before[0] != after[0] and before[1] == after[1]


def test_field_pieces_tokenize_like_whole_lines_for_smollm2():
    """The grammar tokenizes fields one at a time; for the embedded model's tokenizer that must be
    exactly how whole event lines tokenize, or the constraint would force unnatural token paths."""
    from transformers import AutoTokenizer

    gguf = embedded_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)

    def enc(s):
        return tok(s, add_special_tokens=False)["input_ids"]

    behaviors = ["ride_hailing", "web_browsing", "music", "health_consult", "short_video"]
    for day, minutes, zone, behavior in itertools.product(("Monday", "Wednesday", "Sunday"), (0, 450, 1410),
                                                          ("z1", "z10", "z_other"), behaviors):
        line = f"{day}, {minutes // 60:02d}:{minutes % 60:02d}, {zone}, {behavior}"
        pieces = enc(day) + enc(line[len(day):line.index(zone) - 2]) + enc(f", {zone}") + enc(f", {behavior}")
        assert enc(line + "\nTuesday") == pieces + enc("\n") + enc("Tuesday"), line
