"""Grammar-constrained decoding of BehaviorGen's event lines for local models.

`EventGrammar` states what a valid response is, with the rules of `generate.parse_response`:
lines `Weekday, HH:MM, zone, behaviour`; weekdays following the requested days in order; times
on the slot grid, never decreasing within a day; zones and behaviours from the vocabulary; at
most `max_per_day` events a day. `EventLogitsProcessor` masks, at every decoding step, each token
that cannot continue a valid response, so every completion parses. Among the valid continuations
the model still chooses with its own probabilities (temperature and top-p apply after the mask).

Each field is tokenized on its own (`Monday` | `, 07:30` | `, z1` | `, ride_hailing` | newline).
For the byte-level BPE of SmolLM2 these pieces start and end on pre-tokenizer boundaries, so
their concatenation is the tokenization the model saw in training (tests check this).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from behaviorflow.data.events import WEEKDAYS, hhmm


@dataclass(frozen=True)
class EventGrammar:
    days: tuple[int, ...]  # weekday index (Monday = 0) of each requested day, in order
    zones: tuple[str, ...]
    behaviors: tuple[str, ...]
    slot_minutes: int = 30
    max_per_day: int = 48


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


class EventLogitsProcessor:
    """A transformers logits processor that keeps every row of a batch inside `EventGrammar`."""

    def __init__(self, grammar: EventGrammar, tokenizer, prompt_width: int, max_new_tokens: int):
        self.g = grammar
        self.eos = tokenizer.eos_token_id
        self.prompt_width = prompt_width
        self.max_new_tokens = max_new_tokens

        def enc(s):
            return tuple(tokenizer(s, add_special_tokens=False)["input_ids"])

        self._weekday_ids = {d: enc(WEEKDAYS[d]) for d in set(grammar.days)}
        times = range(0, 24 * 60, grammar.slot_minutes)
        self._time_ids = {t: enc(f", {hhmm(t)}") for t in times}
        self._zone = _trie({z: enc(f", {z}") for z in grammar.zones})
        self._behavior = _trie({b: enc(f", {b}") for b in grammar.behaviors})
        self._newline = _trie({"\n": enc("\n")})
        self.line_tokens = (max(map(len, self._weekday_ids.values())) + max(map(len, self._time_ids.values()))
                            + max(len(enc(f", {z}")) for z in grammar.zones)
                            + max(len(enc(f", {b}")) for b in grammar.behaviors) + len(enc("\n")))
        if max_new_tokens < self.line_tokens + 1:
            raise ValueError(f"max_new_tokens={max_new_tokens} cannot hold one event line ({self.line_tokens} "
                             "tokens) and the end token; raise generation.behaviorgen.sampling.max_new_tokens")
        self._tries: dict = {}
        self._masks: dict = {}
        self.states: list[_State] | None = None

    # --- which options each field allows, given the state -------------------------------------
    def _weekday_root(self, s: _State) -> _Node:
        options = {}
        for k in range(max(s.day_pos, 0), len(self.g.days)):
            name = WEEKDAYS[self.g.days[k]]
            if name in options or any(WEEKDAYS[self.g.days[j]] == name for j in range(max(s.day_pos, 0), k)):
                continue  # the parser maps a weekday to its first match from the current day on
            if k == s.day_pos and s.count >= self.g.max_per_day:
                continue
            options[name] = k
        key = ("W", tuple(sorted(options.items())))
        if key not in self._tries:
            self._tries[key] = _trie({k: self._weekday_ids[self.g.days[k]] for k in options.values()})
        return self._tries[key]

    def _time_root(self, s: _State) -> _Node:
        floor = s.last_time if s.chosen_day == s.day_pos else -1
        key = ("T", floor)
        if key not in self._tries:
            self._tries[key] = _trie({t: ids for t, ids in self._time_ids.items() if t >= floor})
        return self._tries[key]

    def _root(self, s: _State) -> _Node:
        return {"W": self._weekday_root, "T": self._time_root, "Z": lambda _: self._zone,
                "B": lambda _: self._behavior, "S": lambda _: self._newline}[s.phase](s)

    def _finish_field(self, s: _State, value) -> None:
        """Close the field just spelled and move to the next one."""
        if s.phase == "W":
            s.chosen_day, s.phase = value, "T"
        elif s.phase == "T":
            if s.chosen_day != s.day_pos:
                s.day_pos, s.count = s.chosen_day, 0
            s.last_time, s.count, s.phase = value, s.count + 1, "Z"
        elif s.phase == "Z":
            s.phase = "B"
        elif s.phase == "B":
            s.phase = "S"
        else:
            s.phase = "W"
        s.node = None

    def _another_line_fits(self, s: _State, generated: int) -> bool:
        budget = self.max_new_tokens - generated - 1  # keep room for the end token
        if budget < self.line_tokens:
            return False
        return s.day_pos < len(self.g.days) - 1 or s.count < self.g.max_per_day

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
                out.add(self.eos)
                if self._another_line_fits(nxt, generated):
                    out.update(self._newline.children)
            else:
                out.update(self._root(nxt).children)
        return tuple(sorted(out))

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids.shape[1] - self.prompt_width
        if self.states is None:
            self.states = [_State() for _ in range(input_ids.shape[0])]
        mask = torch.full_like(scores, float("-inf"))
        for row, s in enumerate(self.states):
            if generated > 0:
                self._advance(s, int(input_ids[row, -1]))
            allowed = self.allowed(s, generated)
            idx = self._masks.get(allowed)
            if idx is None:
                idx = self._masks[allowed] = torch.tensor(allowed, dtype=torch.long, device=scores.device)
            mask[row, idx] = 0.0
        return scores + mask
