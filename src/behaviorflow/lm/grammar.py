"""Grammar-constrained decoding of BehaviorGen's event lines for local models.

`EventGrammar` states what a valid response is, within the rules of `generate.parse_response`:
lines `Weekday, HH:MM, zone, behaviour`; every requested day in order, none skipped (a day's lines,
then the next day's); times on the slot grid, never decreasing within a day; zones and behaviours
from the vocabulary; at most `max_per_day` events a day (one cap for all days, or one per day).
Optionally (`max_run`) a behaviour may fill at most that many consecutive lines of a day; a day
may have a floor as well as a cap (`min_per_day`); and (`behavior_mix`, `zone_mix`, `hour_mix`)
the response's lines may be shared out among behaviours, zones and hours of the day in given
proportions (e.g. the user's own counts): each gets at most its quota of the caps' total, by
largest remainder, and an option without a quota is not offered (a day ends once no hour with
quota left is still ahead of it: times only move forward within a day).
The token budget is shared out so that every day gets at least one line: a day may take another
line only while the budget still holds a line for each day not yet written. `EventLogitsProcessor`
masks, at every decoding step, each token that cannot continue a valid response, so every
completion parses. Among the valid continuations the model still chooses with its own
probabilities (temperature and top-p apply after the mask).

Why every day and a cap per day: with only "days in order" and one cap for the whole population, a
weakly tuned model would jump to the last requested day and repeat one late-evening line up to the
cap (83 % of one run's events fell at 23:00-24:00, against 4 % in the real data).

Each field is tokenized on its own (`Monday` | `, 07:30` | `, z1` | `, ride_hailing` | newline).
For the byte-level BPE of SmolLM2 these pieces start and end on pre-tokenizer boundaries, so
their concatenation is the tokenization the model saw in training (tests check this).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from behaviorflow.data.events import WEEKDAYS, hhmm


@dataclass(frozen=True)
class EventGrammar:
    days: tuple[int, ...]  # weekday index (Monday = 0) of each requested day, in order
    zones: tuple[str, ...]
    behaviors: tuple[str, ...]
    slot_minutes: int = 30
    max_per_day: int | tuple[int, ...] = 48  # one cap for every day, or one per requested day
    max_run: int = 0  # at most this many consecutive lines of one behaviour within a day (0: no limit)
    # ((behaviour, weight), ...): the lines' shares per behaviour (quotas of the caps' total); () for none
    behavior_mix: tuple[tuple[str, int], ...] = ()
    zone_mix: tuple[tuple[str, int], ...] = ()  # the same for zones
    hour_mix: tuple[tuple[str, int], ...] = ()  # the same for the hour of day ("0" ... "23")
    # the fewest events a day may have (one floor for every day, or one per day): a day ends before
    # its floor only when the token budget (or, with an hour mix, the hours left) holds no more line for it
    min_per_day: int | tuple[int, ...] = 1
    # seed of the quotas' unbiased rounding (`quotas`); None: largest remainder
    quota_seed: int | None = None

    def cap(self, k: int) -> int:
        """The most events requested day `k` may have."""
        return self.max_per_day[k] if isinstance(self.max_per_day, tuple) else self.max_per_day

    def floor(self, k: int) -> int:
        """The fewest events requested day `k` should have."""
        return self.min_per_day[k] if isinstance(self.min_per_day, tuple) else self.min_per_day


class _Node:
    __slots__ = ("children", "value")

    def __init__(self):
        self.children: dict[int, _Node] = {}
        self.value = None  # the option this token path spells, when complete


def _trie(options: dict) -> _Node:
    """A token trie over {value: token ids}."""
    root = _Node()
    for value, ids in options.items():
        node = root
        for t in ids:
            node = node.children.setdefault(t, _Node())
        node.value = value
    return root


@dataclass
class _State:
    phase: str = "W"  # W(eekday) -> T(ime) -> Z(one) -> B(ehaviour) -> S(eparator) -> W ... | D(one)
    node: _Node | None = None  # position inside the current field's trie (None: at its root)
    day_pos: int = -1  # index into grammar.days of the current day
    count: int = 0  # events on the current day
    last_time: int = -1
    chosen_day: int = -1  # day picked by the weekday field of the line being written
    generated: int = 0  # tokens generated so far (the weekday field's options depend on the budget left)
    last_behavior: str | None = None  # the behaviour of the day's previous line
    run: int = 0  # how many lines in a row (this day) have had it
    used: tuple[tuple[str, int], ...] = ()  # lines so far per (field, option) with a quota, sorted


def quotas(mix: tuple[tuple[str, int], ...], vocabulary: tuple[str, ...], lines: int,
           rng: np.random.Generator | None = None) -> dict[str, int]:
    """`lines` shared out in proportion to `mix`'s weights over the options that are in
    `vocabulary`; {} for no mix.

    Without `rng`, by largest remainder (ties in `mix` order): the closest shares for one week, but
    an option whose share is under half a line is dropped every time, so the rare behaviours of
    every user go missing together and a population pooled over users loses its tail (8 users'
    weeks: behaviour JSD 0.012 from the training pool, against 0.005 for the users' exact mixes).
    With `rng`, by systematic sampling (options in a random order, one random offset): each option
    gets the floor or the ceiling of its exact share, with the exact share as its expectation.
    """
    weights = {o: w for o, w in mix if o in vocabulary and w > 0}
    if not mix:
        return {}
    if not weights:
        raise ValueError("the mix gives no option of the vocabulary a positive weight")
    total = sum(weights.values())
    exact = {o: lines * w / total for o, w in weights.items()}
    if rng is not None:
        order = [list(exact)[i] for i in rng.permutation(len(exact))]
        edges = np.cumsum([exact[o] for o in order])
        hits = np.minimum(np.searchsorted(edges, rng.random() + np.arange(lines), side="right"), len(order) - 1)
        counts = np.bincount(hits, minlength=len(order))
        drawn = {o: int(c) for o, c in zip(order, counts, strict=True)}
        return {o: drawn[o] for o in exact}
    out = {o: int(x) for o, x in exact.items()}
    for o in sorted(exact, key=lambda o: out[o] - exact[o])[:lines - sum(out.values())]:
        out[o] += 1
    return out


class _RowGrammar:
    """One grammar's token tables and the rules that step a row's state through it."""

    def __init__(self, grammar: EventGrammar, enc, eos: int, max_new_tokens: int):
        self.g = grammar
        self.eos = eos
        self.max_new_tokens = max_new_tokens
        self._weekday_ids = {d: enc(WEEKDAYS[d]) for d in set(grammar.days)}
        times = range(0, 24 * 60, grammar.slot_minutes)
        self._time_ids = {t: enc(f", {hhmm(t)}") for t in times}
        self._zone_ids = {z: enc(f", {z}") for z in grammar.zones}
        self._zone = _trie(self._zone_ids)
        self._behavior_ids = {b: enc(f", {b}") for b in grammar.behaviors}
        self._behavior = _trie(self._behavior_ids)
        self._newline = _trie({"\n": enc("\n")})
        self.line_tokens = (max(map(len, self._weekday_ids.values())) + max(map(len, self._time_ids.values()))
                            + max(map(len, self._zone_ids.values()))
                            + max(map(len, self._behavior_ids.values())) + len(enc("\n")))
        for name, per_day in (("caps", grammar.max_per_day), ("floors", grammar.min_per_day)):
            if isinstance(per_day, tuple) and len(per_day) != len(grammar.days):
                raise ValueError(f"{len(per_day)} per-day {name} for {len(grammar.days)} requested days")
        if min(grammar.cap(k) for k in range(len(grammar.days))) < 1:
            raise ValueError("every requested day needs a cap of at least one event")
        need = self.line_tokens * len(grammar.days) + 1
        if max_new_tokens < need:
            raise ValueError(f"max_new_tokens={max_new_tokens} cannot hold one event line ({self.line_tokens} "
                             f"tokens) for each of the {len(grammar.days)} requested days and the end token "
                             f"({need}); raise generation.behaviorgen.sampling.max_new_tokens")
        # a line's average length over the field options (each field's options equally likely)
        fields = [self._weekday_ids.values(), self._time_ids.values(), self._zone_ids.values(),
                  self._behavior_ids.values(), [enc("\n")]]
        self.caps = self._fit_caps(max_new_tokens, sum(sum(map(len, f)) / len(f) for f in fields))
        rng = None if grammar.quota_seed is None else np.random.default_rng(grammar.quota_seed)
        self.quotas = {"Z": quotas(grammar.zone_mix, grammar.zones, sum(self.caps), rng),
                       "B": quotas(grammar.behavior_mix, grammar.behaviors, sum(self.caps), rng),
                       "T": quotas(grammar.hour_mix, tuple(map(str, range(24))), sum(self.caps), rng)}
        self._tries: dict = {}

    def _fit_caps(self, max_new_tokens: int, avg_line: float) -> list[int]:
        """The per-day caps, scaled down together when their lines at an average length would not
        fit the token budget (so a long week thins every day instead of starving the last ones)."""
        caps = [self.g.cap(k) for k in range(len(self.g.days))]
        fits = int((max_new_tokens - 1) / avg_line)
        if sum(caps) <= fits:
            return caps
        return [max(1, int(c * fits / sum(caps))) for c in caps]

    # --- which options each field allows, given the state -------------------------------------
    def _weekday_root(self, s: _State) -> _Node:
        # the current day while it may take another line, else the next day (consecutive requested
        # days have different names, so the parser maps each line to the same day as here)
        room = s.day_pos >= 0 and self._room_today(s, s.generated)
        options = [s.day_pos] if room else []
        if s.day_pos + 1 < len(self.g.days) and (not room or self._day_may_end(s)):
            options.append(s.day_pos + 1)
        key = ("W", tuple(options))
        if key not in self._tries:
            self._tries[key] = _trie({k: self._weekday_ids[self.g.days[k]] for k in options})
        return self._tries[key]

    def _time_root(self, s: _State) -> _Node:
        floor = s.last_time if s.chosen_day == s.day_pos else -1
        times = [t for t in self._time_ids if t >= floor]
        hours = self._left(s, "T")
        if hours is not None:  # the hours with quota left (`_room_today` keeps one ahead), else any later time
            times = [t for t in times if str(t // 60) in hours] or times
            # and no time so late that the hours' quota left from it on cannot hold the day's floor
            # (a model that jumped to 20:00 at a day's first line ended the day at a third of its length)
            day = s.chosen_day
            need = min(self.g.floor(day), self.caps[day]) - (s.count if day == s.day_pos else 0)
            if need > 1:
                ahead = self._hour_quota_ahead(s)
                times = [t for t in times if ahead[t // 60] >= need] or times
        key = ("T", tuple(times))
        if key not in self._tries:
            self._tries[key] = _trie({t: self._time_ids[t] for t in times})
        return self._tries[key]

    def _hour_quota_ahead(self, s: _State) -> list[int]:
        """For each hour h, the lines the hour quotas still allow at hours h..23."""
        used = dict(s.used)
        left = [max(0, self.quotas["T"].get(str(h), 0) - used.get(("T", str(h)), 0)) for h in range(24)]
        ahead = [0] * 25
        for h in range(23, -1, -1):
            ahead[h] = ahead[h + 1] + left[h]
        return ahead

    def _root(self, s: _State) -> _Node:
        return {"W": self._weekday_root, "T": self._time_root, "Z": self._zone_root,
                "B": self._behavior_root, "S": lambda _: self._newline}[s.phase](s)

    def _left(self, s: _State, field: str) -> list[str] | None:
        """The options of `field` whose quota is not yet used up (all with a quota, once every
        quota is spent); None when the field has no quotas."""
        quota = self.quotas[field]
        if not quota:
            return None
        used = dict(s.used)
        return [o for o, n in quota.items() if used.get((field, o), 0) < n] or list(quota)

    def _zone_root(self, s: _State) -> _Node:
        options = self._left(s, "Z")
        if options is None:
            return self._zone
        key = ("Z", tuple(options))
        if key not in self._tries:
            self._tries[key] = _trie({z: self._zone_ids[z] for z in options})
        return self._tries[key]

    def _behavior_root(self, s: _State) -> _Node:
        options = self._left(s, "B")
        limited = options is not None
        options = list(self.g.behaviors) if options is None else options
        if self.g.max_run and s.run >= self.g.max_run:
            # the behaviour that has run its course is left out (unless nothing else is left)
            options = [b for b in options if b != s.last_behavior] or options
            limited = True
        if not limited:
            return self._behavior
        key = ("B", tuple(options))
        if key not in self._tries:
            self._tries[key] = _trie({b: self._behavior_ids[b] for b in options})
        return self._tries[key]

    def _finish_field(self, s: _State, value) -> None:
        """Close the field just spelled and move to the next one."""
        if s.phase == "W":
            s.chosen_day, s.phase = value, "T"
        elif s.phase == "T":
            self._count(s, "T", str(value // 60))
            if s.chosen_day != s.day_pos:
                s.day_pos, s.count, s.last_behavior, s.run = s.chosen_day, 0, None, 0
            s.last_time, s.count, s.phase = value, s.count + 1, "Z"
        elif s.phase == "Z":
            self._count(s, "Z", value)
            s.phase = "B"
        elif s.phase == "B":
            self._count(s, "B", value)
            s.run = s.run + 1 if value == s.last_behavior else 1
            s.last_behavior, s.phase = value, "S"
        else:
            s.phase = "W"
        s.node = None

    def _count(self, s: _State, field: str, value: str) -> None:
        if self.quotas[field]:  # a new tuple: `allowed` steps shallow copies of the state
            used = dict(s.used)
            used[field, value] = used.get((field, value), 0) + 1
            s.used = tuple(sorted(used.items()))

    def _room_today(self, s: _State, generated: int) -> bool:
        """May the current day take another line (its cap, a line kept for each later day, and with
        an hour mix, an hour with quota left that is not behind the day's last time)?"""
        later = len(self.g.days) - 1 - s.day_pos
        budget = self.max_new_tokens - generated - 1  # keep room for the end token
        if s.count >= self.caps[s.day_pos] or budget < self.line_tokens * (1 + later):
            return False
        hours = self._left(s, "T")
        return hours is None or any(t >= s.last_time and str(t // 60) in hours for t in self._time_ids)

    def _day_may_end(self, s: _State) -> bool:
        """Has the current day reached its floor (scaled like its cap when the budget thinned the caps)?"""
        return s.count >= min(self.g.floor(s.day_pos), self.caps[s.day_pos])

    def _another_line_fits(self, s: _State, generated: int) -> bool:
        return s.day_pos < len(self.g.days) - 1 or self._room_today(s, generated)

    # --- stepping -------------------------------------------------------------------------------
    def _advance(self, s: _State, token: int) -> None:
        if s.phase == "D":
            return
        if s.phase == "S" and token == self.eos:
            s.phase = "D"
            return
        node = s.node or self._root(s)
        if token in node.children:
            s.node = node.children[token]
            return
        if node.value is None:
            raise RuntimeError(f"token {token} left the event grammar (phase {s.phase})")
        self._finish_field(s, node.value)
        self._advance(s, token)

    def allowed(self, s: _State, generated: int) -> tuple[int, ...]:
        if s.phase == "D":
            return (self.eos,)
        node = s.node or self._root(s)
        out = set(node.children)
        if node.value is not None:  # the field may end here: the next field's first tokens
            nxt = copy.copy(s)
            self._finish_field(nxt, node.value)
            if nxt.phase == "S":
                # the end only once every day has its lines (and the last its floor, budget allowing)
                if nxt.day_pos == len(self.g.days) - 1 and (
                        self._day_may_end(nxt) or not self._room_today(nxt, generated)):
                    out.add(self.eos)
                if self._another_line_fits(nxt, generated):
                    out.update(self._newline.children)
            else:
                out.update(self._root(nxt).children)
        return tuple(sorted(out))



class EventLogitsProcessor:
    """A transformers logits processor that keeps every row of a batch inside its `EventGrammar`:
    one grammar for every row, or one per row (e.g. each call's own per-day caps), so calls with
    different grammars still decode together in one batch."""

    def __init__(self, grammar: EventGrammar | list[EventGrammar], tokenizer, prompt_width: int,
                 max_new_tokens: int):
        encoded: dict[str, tuple[int, ...]] = {}

        def enc(s):
            if s not in encoded:
                encoded[s] = tuple(tokenizer(s, add_special_tokens=False)["input_ids"])
            return encoded[s]

        self.prompt_width = prompt_width
        self.grammars = grammar if isinstance(grammar, list) else None  # None: one grammar for every row
        self._tables: dict[EventGrammar, _RowGrammar] = {}
        for g in (self.grammars or [grammar]):
            if g not in self._tables:
                self._tables[g] = _RowGrammar(g, enc, tokenizer.eos_token_id, max_new_tokens)
        self.line_tokens = max(t.line_tokens for t in self._tables.values())
        self._masks: dict = {}
        self.states: list[_State] | None = None

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids.shape[1] - self.prompt_width
        if self.states is None:
            if self.grammars is not None and len(self.grammars) != input_ids.shape[0]:
                raise ValueError(f"{len(self.grammars)} grammars for a batch of {input_ids.shape[0]} rows")
            self.states = [_State() for _ in range(input_ids.shape[0])]
        mask = torch.full_like(scores, float("-inf"))
        only = next(iter(self._tables.values()))
        for row, s in enumerate(self.states):
            table = self._tables[self.grammars[row]] if self.grammars else only
            if generated > 0:
                table._advance(s, int(input_ids[row, -1]))
            s.generated = generated
            allowed = table.allowed(s, generated)
            idx = self._masks.get(allowed)
            if idx is None:
                idx = self._masks[allowed] = torch.tensor(allowed, dtype=torch.long, device=scores.device)
            mask[row, idx] = 0.0
        return scores + mask
