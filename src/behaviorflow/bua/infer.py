"""A trained BUA model at inference: the base LLM with its LoRA adapter merged, the projector reloaded
from the same folder, and the encoder states scattered in at the placeholders (`align.make_inject`).

It writes the understanding rounds greedily (Fig. 1c: key behaviours, patterns, feature summary) and
then scores every label after the final question with the shared label scorer (`lm.scoring`), so a
BUA row is evaluated exactly as every other LLM row; or, for one-day generation (table 8), writes the
next day after the same rounds, sampled under the one-day event grammar (`lm.grammar`) as BehaviorGen
is, so every answer parses."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from behaviorflow.bua.align import STATES, make_inject, placeholder_token, projector
from behaviorflow.lm.local import register_prefix_attention

log = logging.getLogger(__name__)


def load_projector(adapter_dir, llm_dim: int):
    """The projector saved beside the adapter (`trainable.safetensors`, keys `extras.projector.*`)."""
    from safetensors.torch import load_file

    from behaviorflow.lm.tuning import TRAINABLE_FILE

    state = load_file(str(Path(adapter_dir) / TRAINABLE_FILE))
    mine = {k.removeprefix("extras.projector."): v for k, v in state.items() if k.startswith("extras.projector.")}
    if not mine:
        raise ValueError(f"{adapter_dir}: no projector weights (extras.projector.*); is this a BUA stage's output?")
    mlp = projector(mine["0.weight"].shape[1], llm_dim, seed=0)
    mlp.load_state_dict(mine)
    return mlp


def _left_padded(rows: list[list[int]], pad: int, device):
    """Token rows left-padded to the longest (a decoder continues each row's last token) and their mask."""
    import torch

    width = max(len(r) for r in rows)
    return (torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device),
            torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device))


def even_batches(n: int, batch_size: int) -> list[range]:
    """`n` rows in the fewest batches of at most `batch_size`, their sizes differing by one at most.

    A decoding step costs about the same for 6 rows as for 48: 150 queries in batches of 48, 48,
    48 and 6 take four batches' steps where three of 50 do (15 % less time for the rounds here)."""
    if n <= 0:
        return []
    count = -(-n // batch_size)
    size, extra = divmod(n, count)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(count)])
    return [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _extends(prompts: list[list[int]], prev: list[list[int]]) -> bool:
    """Whether every prompt begins with its row's previous prompt."""
    return all(p[:len(q)] == q for p, q in zip(prompts, prev))


class BuaModel:
    """Merged LLM + projector + placeholder: embeddings, greedy generation and label scoring."""

    def __init__(self, model, tok, mlp, placeholder: str, placeholder_id: int):
        self.model, self.tok, self.placeholder, self.placeholder_id = model, tok, placeholder, placeholder_id
        self.mlp = mlp
        self.inject = make_inject(placeholder_id)

    @classmethod
    def load(cls, model_dir, adapter_dir, placeholder: str = "auto", device: str = "auto", dtype: str = "float32",
             threads: int | None = None) -> "BuaModel":
        from behaviorflow.lm.scoring import load_scorer

        model, tok = load_scorer(model_dir, adapter_dir, device, dtype, threads)
        # decoding as the transformers backend does: a static cache read only up to its used prefix
        # and a per-row causal prefill (`lm.local`); label scoring's tree masks fall through to SDPA
        model.set_attn_implementation(register_prefix_attention())
        p = next(model.parameters())
        mlp = load_projector(adapter_dir, model.config.hidden_size).to(p.device, p.dtype).eval()
        token, token_id = placeholder_token(tok, placeholder)
        return cls(model, tok, mlp, token, token_id)

    def embed(self, ids, states):
        """Input embeddings of `ids` [B, T] with row b's states [K, d] at its K placeholders."""
        import torch

        p = next(self.model.parameters())
        embeds = self.model.get_input_embeddings()(ids)
        return self.inject({"projector": self.mlp}, embeds,
                           {"input_ids": ids, STATES: torch.as_tensor(np.asarray(states), device=p.device)})

    def generate(self, prompts: list[list[int]], states: np.ndarray, max_new_tokens: int, batch_size: int = 16,
                 desc: str | None = None, grammars: list | None = None, sampling=None,
                 seed: int = 0) -> list[str]:
        """Answers to each prompt (left-padded batches, decoded from input embeddings): greedy, or with
        `grammars` (one `EventGrammar` per prompt) sampled under them with `sampling` (temperature,
        top_p), the torch generator seeded per batch from `seed`."""
        import torch
        from tqdm import tqdm

        from behaviorflow.lm.grammar import EventLogitsProcessor

        device = next(self.model.parameters()).device
        pad = self.tok.pad_token_id
        out = []
        with torch.no_grad():
            for b in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch", disable=desc is None,
                          mininterval=5.0):
                ids, mask = _left_padded(prompts[b:b + batch_size], pad, device)
                extra = {"do_sample": False}
                if grammars is not None:  # input ids start empty when decoding from embeddings: width 0
                    torch.manual_seed(seed * 100_003 + b)
                    extra = {"logits_processor": [EventLogitsProcessor(grammars[b:b + batch_size], self.tok, 0,
                                                                       max_new_tokens)],
                             "do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
                             "top_k": 0}
                new = self.model.generate(inputs_embeds=self.embed(ids, states[b:b + batch_size]),
                                          attention_mask=mask, max_new_tokens=max_new_tokens, pad_token_id=pad,
                                          cache_implementation="static", **extra)
                out += [t.strip() for t in self.tok.batch_decode(new, skip_special_tokens=True)]
        return out

    def _dialogues(self, render, n_rows: int, rounds: int, states: np.ndarray, max_new_tokens: int,
                   batch_size: int, desc: str | None):
        """Per batch of rows: the rows, their answers, and the dialogue's state after the last round
        (ids, mask, cache, that round's prompts; the cache None without rounds). `converse`."""
        import torch
        from tqdm import tqdm
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        pad = self.tok.pad_token_id
        bar = tqdm(total=n_rows * rounds, desc=desc, unit="answer", disable=desc is None, mininterval=5.0)
        with torch.no_grad(), bar:
            for rows in even_batches(n_rows, batch_size):
                prev, ids, mask, cache = None, None, None, None
                answers = [[] for _ in rows]
                for _ in range(rounds):
                    prompts = [render(i, a) for i, a in zip(rows, answers)]
                    common = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
                    if prev is not None and _extends(prompts, prev):
                        seg, seg_mask = _left_padded([p[len(q):] for p, q in zip(prompts, prev)], pad, device)
                        ids, mask = torch.cat([ids, seg], 1), torch.cat([mask, seg_mask], 1)
                        new = self.model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache,
                                                  **common)[:, ids.shape[1]:]
                    else:
                        (ids, mask), cache = _left_padded(prompts, pad, device), DynamicCache(config=self.model.config)
                        new = self.model.generate(inputs_embeds=self.embed(ids, states[rows.start:rows.stop]),
                                                  attention_mask=mask, past_key_values=cache, **common)
                    ids, mask, prev = torch.cat([ids, new], 1), torch.cat([mask, torch.zeros_like(new)], 1), prompts
                    for a, text in zip(answers, self.tok.batch_decode(new, skip_special_tokens=True)):
                        a.append(text.strip())
                    bar.update(len(rows))
                yield rows, answers, (ids, mask, cache, prev)

    def converse(self, render, n_rows: int, rounds: int, states: np.ndarray, max_new_tokens: int,
                 batch_size: int = 16, desc: str | None = None) -> list[list[str]]:
        """Greedy answers of each of `n_rows` dialogues to `rounds` questions in turn: `render(i, answers)`
        gives dialogue i's prompt after its answers so far (the next question last).

        Each batch keeps one key/value cache for its whole dialogue: a round prefills only the tokens
        its prompt adds to the previous round's (the answer as the chat template renders it, then the
        next question), and the slots of the tokens the model generated are masked out, so every round
        attends to exactly its rendered prompt, as a fresh prefill would (tested), at a third of the
        prefill work of three rounds. A prompt that is no extension of the previous one (a template
        that renders earlier turns differently once answered) gets a fresh prefill."""
        return [a for _, answers, _ in self._dialogues(render, n_rows, rounds, states, max_new_tokens, batch_size,
                                                       desc) for a in answers]

    def converse_and_score(self, render, n_rows: int, rounds: int, states: np.ndarray, max_new_tokens: int,
                           cands: list[list[int]], batch_size: int = 16,
                           desc: str | None = None) -> tuple[list[list[str]], np.ndarray]:
        """`converse`, then every candidate scored after each dialogue's final prompt (`render` with all
        its answers) on the same cache: only the last answer and the final question are added before
        the label tree (`lm.scoring.score_continuations`), instead of the whole dialogue prefilled
        again; without rounds, or when the final prompt is no extension, the shared scorer runs."""
        from behaviorflow.lm.scoring import score_continuations

        out, scores = [], np.zeros((n_rows, len(cands)))
        for rows, answers, (ids, mask, cache, prev) in self._dialogues(render, n_rows, rounds, states,
                                                                        max_new_tokens, batch_size, desc):
            prompts = [render(i, a) for i, a in zip(rows, answers)]
            own = [p[len(q):] for p, q in zip(prompts, prev)] if prev is not None else None
            if own is not None and _extends(prompts, prev) and not any(self.placeholder_id in o for o in own):
                cached = cache.get_seq_length()
                scores[rows.start:rows.stop] = score_continuations(self.model, cache, mask[:, :cached].bool(), own,
                                                                   cands, self.tok.pad_token_id)
            else:
                scores[rows.start:rows.stop] = self.score(prompts, states[rows.start:rows.stop], cands)
            out += answers
        return out, scores

    def score(self, prompts: list[list[int]], states: np.ndarray, cands: list[list[int]],
              desc: str | None = None) -> np.ndarray:
        """[n_prompts, n_candidates] label log-likelihoods (`lm.scoring.score_labels`) with the states
        scattered into each prompt; the shared prefix stops before the first placeholder."""
        from behaviorflow.lm.scoring import score_labels

        first = min(p.index(self.placeholder_id) for p in prompts)

        def embed(rows, ids):
            return self.embed(ids, states[rows.start:rows.stop])

        return score_labels(self.model, prompts, cands, self.tok.pad_token_id, progress=desc, embed=embed,
                            prefix_limit=first)


def _dialogue_of(model: BuaModel, contexts, positions: int, text_events: int, rounds: tuple[str, ...],
                 final: str):
    """`messages(i, answers)`: sample i's dialogue after its answers so far, the next question last."""
    from behaviorflow.bua.tasks import dialogue

    def messages(i: int, answers: list[str]) -> list[dict]:
        return dialogue(contexts[i], {}, model.placeholder, positions, text_events, rounds=rounds, final=final,
                        replies=dict(zip(rounds, answers)))

    return messages


def understand(model: BuaModel, contexts, states: np.ndarray, *, positions: int, text_events: int,
               rounds: tuple[str, ...], max_new_tokens: int, final: str = "predict", batch_size: int = 16,
               desc: str = "bua"):
    """The understanding rounds of Fig. 1c: the model answers each in turn (its own earlier answers
    in the dialogue, greedily; one cache per batch for the whole dialogue, `BuaModel.converse`).
    Returns its answers per sample and each dialogue up to the `final` round's question."""
    from behaviorflow.lm.scoring import prompt_ids

    messages = _dialogue_of(model, contexts, positions, text_events, rounds, final)
    answers = model.converse(lambda i, a: prompt_ids(model.tok, messages(i, a)), len(contexts), len(rounds), states,
                             max_new_tokens, batch_size=batch_size, desc=f"{desc} rounds")
    return [dict(zip(rounds, a)) for a in answers], [messages(i, a) for i, a in enumerate(answers)]


def _answers_frame(contexts, replies, rounds) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [c.query.user_id for c in contexts],
                         "event_idx": [c.query.event_idx for c in contexts],
                         **{task: [r[task] for r in replies] for task in rounds}})


def understand_and_score(model: BuaModel, contexts, states: np.ndarray, labels: list[str], *, positions: int,
                         text_events: int, rounds: tuple[str, ...], max_new_tokens: int, batch_size: int = 16,
                         desc: str = "bua") -> tuple[np.ndarray, pd.DataFrame]:
    """The multi-round inference of Fig. 1c: the understanding rounds, then every label scored after
    the final question on the dialogue's own cache (`BuaModel.converse_and_score`). Returns the
    scores and the model's answers per sample."""
    from behaviorflow.lm.scoring import candidate_ids, prompt_ids

    messages = _dialogue_of(model, contexts, positions, text_events, rounds, "predict")
    cands = candidate_ids(model.tok, messages(0, [""] * len(rounds)), labels)
    answers, scores = model.converse_and_score(lambda i, a: prompt_ids(model.tok, messages(i, a)), len(contexts),
                                               len(rounds), states, max_new_tokens, cands, batch_size=batch_size,
                                               desc=f"{desc} rounds")
    return scores, _answers_frame(contexts, [dict(zip(rounds, a)) for a in answers], rounds)


def bua_predict(split_path, states_path, model_dir, adapter_dir, outputs: dict, *, dataset: str, method: str,
                seed: int, bua: dict, variant: dict, device: str = "auto", dtype: str = "float32",
                threads: int | None = None) -> pd.DataFrame:
    """Rule bua_predict: the BUA row's leaderboard rows on the LLM test queries (the same queries and
    protocol as table 5), its per-query scores and its understanding answers."""
    from behaviorflow.atomic import write_csv
    from behaviorflow.behaviorlm.evaluate import train_groups
    from behaviorflow.bua.stages import labels_and_shares, load_samples
    from behaviorflow.predictors.evaluation import evaluate, long_rows

    split, samples = load_samples(split_path, states_path, bua["window"], ("test",))
    labels, _ = labels_and_shares(split)
    contexts, states = samples["test"]
    model = BuaModel.load(model_dir, adapter_dir, bua["placeholder"], device, dtype, threads)
    scores, said = understand_and_score(model, contexts, states, labels, positions=bua["positions"],
                                        text_events=bua["text_events"], rounds=tuple(variant["rounds"]),
                                        max_new_tokens=bua["understanding_tokens"], batch_size=bua["batch_size"],
                                        desc=method)
    index = {lab: i for i, lab in enumerate(labels)}
    truth = np.array([index[c.query.label] for c in contexts])
    rows = long_rows(evaluate(scores, truth, train_groups(split, labels)), dataset=dataset, model=method,
                     generator="none", setting="real", seed=seed)
    rows["queries"] = len(contexts)
    write_csv(rows, outputs["metrics"])
    frame = pd.DataFrame(scores, columns=labels)
    frame.insert(0, "user_id", said["user_id"])
    frame.insert(1, "event_idx", said["event_idx"])
    frame.to_parquet(outputs["scores"])
    said.assign(predicted=[labels[i] for i in scores.argmax(1)], label=[c.query.label for c in contexts]) \
        .to_parquet(outputs["answers"])
    return rows


def day_grammars(history, zones, behaviors, slot_minutes: int, seed: int, ceiling: int, user_mix: bool,
                 fill_days: bool) -> list:
    """The one-day event grammar of each history context (`bua.days.history_contexts`), in order:
    the day's cap drawn from the user's own days (seeded by the context's position), no behaviour in a
    row longer than the user's longest run, the user's mixes as quotas (`user_mix`), the cap as the
    floor too (`fill_days`)."""
    from behaviorflow.behaviorgen.contexts import user_grammar

    return [user_grammar(h.events, [h.start], zones, behaviors, slot_minutes, np.random.default_rng([seed, i]),
                         ceiling, user_mix, fill_days) for i, h in enumerate(history)]


def bua_generate(split_path, states_path, model_dir, adapter_dir, outputs: dict, *, dataset: str,
                 method: str, seed: int, bua: dict, variant: dict, sampling: dict, slot_minutes: int,
                 top_zones: int, user_mix: bool = False, fill_days: bool = False, device: str = "auto",
                 dtype: str = "float32", threads: int | None = None):
    """Rule bua_generate: the BUA row's next day for each sampled test user (table 8's days): the
    understanding rounds, then the generation round sampled under the one-day event grammar (each
    day's cap drawn from the user's own days and no behaviour repeated in a row more often than the
    user ever does, with `user_mix` the user's own behaviour, zone and hour mix as quotas, and with
    `fill_days` the drawn cap as the day's floor too: BehaviorGen's grammar); its days and fidelity rows."""
    from behaviorflow.atomic import write_csv, write_parquet
    from behaviorflow.behaviorgen.contexts import max_events_per_day, vocabularies
    from behaviorflow.behaviorgen.prompts import WeekRequest
    from behaviorflow.behaviorgen.responses import parse_response, to_rows
    from behaviorflow.bua.days import history_contexts, metric_rows, real_days, synthetic_frame
    from behaviorflow.bua.stages import load_samples
    from behaviorflow.lm.backends import Sampling
    from behaviorflow.lm.scoring import prompt_ids

    split, samples = load_samples(split_path, states_path, bua["window"], ("gen_test",))
    contexts, states = samples["gen_test"]
    keys = [c.key for c in contexts]
    history = history_contexts(split, None, keys)  # the dates, history and caps (BUA reads no profile)
    zones, behaviors = vocabularies(split, top_zones)
    ceiling = max_events_per_day(split)
    grammars = day_grammars(history, zones, behaviors, slot_minutes, seed, ceiling, user_mix, fill_days)
    model = BuaModel.load(model_dir, adapter_dir, bua["placeholder"], device, dtype, threads)
    rounds = tuple(variant["rounds"])
    replies, final = understand(model, contexts, states, positions=bua["positions"], text_events=bua["text_events"],
                                rounds=rounds, max_new_tokens=bua["understanding_tokens"], final="generate",
                                batch_size=bua["batch_size"], desc=f"{method} days")
    texts = model.generate([prompt_ids(model.tok, m) for m in final], states, bua["generation"]["max_new_tokens"],
                           batch_size=bua["generation"]["batch_size"], desc=f"{method} day lines",
                           grammars=grammars, sampling=Sampling(**sampling), seed=seed)
    rows, invalid = [], 0
    for h, text in zip(history, texts):
        parsed = parse_response(text, WeekRequest(h.user_id, h.start, n_days=1), set(zones), set(behaviors))
        invalid += not parsed.valid
        rows += to_rows(h, h.start, parsed, slot_minutes)
    if invalid:
        log.warning("%d of %d generated days did not parse", invalid, len(texts))
    days = synthetic_frame(rows)
    write_parquet(days, outputs["days"])
    write_parquet(_answers_frame(contexts, replies, rounds).assign(day=texts), outputs["answers"])
    metrics = metric_rows(real_days(split, keys), days, dataset=dataset, model=method, seed=seed, days=len(keys))
    write_csv(metrics, outputs["metrics"])
    return metrics
