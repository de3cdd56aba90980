"""BUA's curriculum answers written by an LLM (`bua.answers.source: openai`, for users with a strong
endpoint): each understanding task's reference answer, written by the openai backend from the
events the task is about and the facts the rules derive from them, instead of the rules' terse line.

Only the understanding tasks are written (`WRITTEN`): sequence reconstruction is a listing, the
final round's answers are data (the next behaviour, the real next day). A task's prompt holds the
window before the target (and, for the future scene, the two hours from the target on, as the rule
answer does), never the target's behaviour. Every call goes through the call cache
(`lm.backends.CachedLLM`): a rerun, or a second seed drawing the same samples, asks nothing twice.
Which samples: those the seed's stages draw (`bua.stages.draws`), the validation samples, and the
generation dialogues' days; which tasks: `bua.answers.tasks`.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from behaviorflow.bua.tasks import ROUNDS, Context, answers, event_line, question

log = logging.getLogger(__name__)

WRITTEN = ("current_scene", "future_scene", "home_work", "hobby", "key_behaviours", "patterns", "summary")
WRITER_SYSTEM = ("You write reference answers about one person's recent daily events. Use only the events and "
                 "facts given, name zones and behaviours exactly as written, and answer in at most {words} "
                 "words, without a preamble.")


def writer_messages(ctx: Context, task: str, fact: str, positions: int, words: int) -> list[dict]:
    """The writer's prompt for one task: the window's events (oldest first), for the future scene
    the events of the two hours from the target on, the rule-derived fact and the question."""
    if task not in WRITTEN:
        raise ValueError(f"the LLM writes the understanding tasks {WRITTEN}, not {task!r}")
    parts = ["Events, oldest first (day, time, zone, behaviour):", *(event_line(e) for e in ctx.query.history)]
    if task == "future_scene":
        parts += ["Events of the next two hours:", *(event_line(e) for e in ctx.future)]
    parts += [f"Facts computed from these events: {fact}", f"Question: {question(task, ctx, positions)}"]
    return [{"role": "system", "content": WRITER_SYSTEM.format(words=words)},
            {"role": "user", "content": "\n".join(parts)}]


def requests_of(samples: dict[str, list[Context]], shares: dict[str, float], positions: int,
                tasks: tuple[str, ...]) -> pd.DataFrame:
    """One row per (part, sample, task) to write: the generation dialogues' days need only stage 2's
    rounds; the training and validation samples every listed task (the future scene where the
    sample has its next two hours: training users only; the rest keep the rules' "no events")."""
    rows = []
    for part, contexts in samples.items():
        wanted = [t for t in tasks if part != "gen_train" or t in ROUNDS]
        for ctx in contexts:
            ref = answers(ctx, shares, positions)
            rows += [(part, ctx.query.user_id, ctx.query.event_idx, task, ref[task]) for task in wanted
                     if task != "future_scene" or ctx.future]  # validation samples have no next hours to write from
    return pd.DataFrame(rows, columns=["part", "user_id", "event_idx", "task", "rule_answer"])


def write_answers(llm, samples: dict[str, list[Context]], shares: dict[str, float], *, positions: int,
                  settings: dict, vocabulary=()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every sample's listed tasks written by `llm` (a `CachedLLM`): the answers, and the call log
    (one row per attempt). A failed call (an error, an empty answer, or one cut at `max_new_tokens`:
    a small model can loop where greedy decoding never ends) is asked again with the next seed,
    sampled at `retry_temperature` at least; raises when a task has no usable answer after
    `max_attempts`. The answers already written are cached, so a rerun asks only for the rest, and
    takes each answer from the attempt that wrote it (the failed ones before it are logged again).
    Each answer's `fact_recall` counts the zones, behaviours (`vocabulary`) and times it keeps."""
    from dataclasses import replace

    from behaviorflow.lm.backends import Sampling

    tasks = tuple(settings["tasks"])
    frame = requests_of(samples, shares, positions, tasks)
    by_key = {(p, c.query.user_id, c.query.event_idx): c for p, cs in samples.items() for c in cs}
    messages = [writer_messages(by_key[(p, u, i)], t, fact, positions, settings["words"])
                for p, u, i, t, fact in frame[["part", "user_id", "event_idx", "task", "rule_answer"]]
                .itertuples(index=False, name=None)]
    sampling = Sampling(temperature=settings["temperature"], top_p=settings["top_p"],
                        max_new_tokens=settings["max_new_tokens"])
    retry = replace(sampling, temperature=max(sampling.temperature, settings["retry_temperature"]))

    def request(i: int, attempt: int) -> tuple[list[dict], Sampling, int]:
        return messages[i], sampling if attempt == 1 else retry, settings["seed"] + attempt - 1

    written: list[str | None] = [None] * len(frame)
    keys = [""] * len(frame)
    calls, last_error = [], {}

    def settle(i: int, attempt: int, res) -> bool:
        text = res.completion.text.strip() if _usable(res) else ""
        error = res.error or ("" if text else "empty answer")
        calls.append(_call(i, attempt, res.key, res.cache_hit, error, res.completion))
        if error:
            last_error[i] = error
            return False
        written[i], keys[i] = text, res.key
        return True

    pending = []
    for i in range(len(frame)):  # a rerun: each answer from the attempt that gave it, asking nothing
        for attempt in range(1, settings["max_attempts"] + 1):
            res = llm.cached(*request(i, attempt))
            if res is not None and _usable(res):
                # the attempts before it failed (failures are never cached): logged as they were
                calls.extend(_call(i, a, "", True, "failed earlier (not cached)") for a in range(1, attempt))
                settle(i, attempt, res)
                break
        else:
            pending.append(i)
    with tqdm(total=len(frame), initial=len(frame) - len(pending), desc="bua answers", unit="answer") as bar:
        for attempt in range(1, settings["max_attempts"] + 1):
            if not pending:
                break
            results = llm.complete_batch([request(i, attempt) for i in pending],
                                         on_result=lambda _, res: bar.update(_usable(res)))
            pending = [i for i, res in zip(pending, results) if not settle(i, attempt, res)]
    if pending:
        first = frame.iloc[pending[0]]
        raise RuntimeError(
            f"{len(pending)} of {len(frame)} curriculum answers have no usable completion after "
            f"{settings['max_attempts']} attempt(s) (e.g. {first['task']} of {first['user_id']}/{first['event_idx']}: "
            f"{last_error[pending[0]]}); the {len(frame) - len(pending)} written are cached, so a rerun asks only "
            "for these. A truncated answer needs a larger bua.answers.max_new_tokens.")
    calls = pd.DataFrame(calls, columns=list(_call(0, 0, "", False, "")))
    facts = set(vocabulary)
    frame = frame.assign(answer=written, key=keys)
    recall = [fact_recall(w, r, facts) for w, r in zip(frame["answer"], frame["rule_answer"])]
    return frame.assign(fact_recall=recall), calls


def _call(i: int, attempt: int, key: str, cache_hit: bool, error: str, completion=None) -> dict:
    """One attempt's row of the call log (what `summarize_log` counts)."""
    return {"call": i, "attempt": attempt, "key": key, "cache_hit": cache_hit, "valid": not error, "error": error,
            "prompt_tokens": completion.prompt_tokens if completion else 0,
            "completion_tokens": completion.completion_tokens if completion else 0}


def _usable(res) -> bool:
    return res.completion is not None and bool(res.completion.text.strip())


def _words(text: str) -> list[str]:
    return [w.strip(".,;:()[]\"'*").lower() for w in re.split(r"[\s\-/]+", text)]


def fact_recall(written: str, rule_answer: str, vocabulary: set[str]) -> float:
    """How much of the rules' answer the written one keeps: the share of its facts (zones, behaviours
    and times: words in `vocabulary` or with a digit) found in the written answer; 1 without facts."""
    facts = {w for w in _words(rule_answer) if w in vocabulary or (any(c.isdigit() for c in w) and not w.endswith("x"))}
    if not facts:
        return 1.0
    return len(facts & set(_words(written))) / len(facts)


def answer_book(path) -> dict[str, dict[tuple[str, int], dict[str, str]]]:
    """part -> (user_id, event_idx) -> {task: written answer}, from a curriculum-answers file."""
    frame = pd.read_parquet(path)
    book: dict[str, dict[tuple[str, int], dict[str, str]]] = {}
    for p, u, i, t, a in frame[["part", "user_id", "event_idx", "task", "answer"]].itertuples(index=False, name=None):
        book.setdefault(p, {}).setdefault((str(u), int(i)), {})[t] = a
    return book


def with_written(ref: dict[str, str], ctx: Context, written: dict | None, source: str = "") -> dict[str, str]:
    """A sample's reference answers with the written ones in place of the rules' (`written`: one
    part's book; None: the rules' as they are). A sample the book lacks is an error: the answers
    file was written for other samples than the stage draws."""
    if not written:  # no file, or no task of this part is written (the generation days without stage-2 rounds)
        return ref
    if ctx.key not in written:
        raise ValueError(f"{source}: no written answers for sample {ctx.key[0]}/{ctx.key[1]}; the file was written "
                         "for other samples (rebuild it with this split, seed and bua settings)")
    return {**ref, **written[ctx.key]}


def needed_samples(train: list[Context], gen_train: list[Context], val: list[Context],
                   picks: dict[str, np.ndarray]) -> dict[str, list[Context]]:
    """The samples a seed's stages read: the union of its stage-1, stage-2 and reflection draws from
    the training pool, its generation dialogues' days, and every validation sample."""
    pool = sorted(set(picks["stage1"].tolist()) | set(picks["stage2"].tolist()) | set(picks["reflect"].tolist()))
    return {"train": [train[i] for i in pool], "val": list(val), "gen_train": [gen_train[i] for i in picks["gen_train"]]}


def bua_answers(split_path, states_path, outputs: dict, *, bua: dict, seed: int, backend: dict,
                cache_dir: str) -> dict:
    """Rule bua_answers: one seed's curriculum answers written through the openai backend (`backend`:
    generation.behaviorgen.openai), cached in `cache_dir`: the answers (parquet, the rules' beside
    each) and a summary (calls, tokens, the estimated cost, the endpoint)."""
    from behaviorflow.atomic import write_json, write_parquet
    from behaviorflow.behaviorgen.outputs import summarize_log
    from behaviorflow.bua.stages import draws, labels_and_shares, load_samples
    from behaviorflow.lm.backends import cached_llm

    split, samples = load_samples(split_path, states_path, bua["window"], ("train", "val", "gen_train"))
    _, shares = labels_and_shares(split)
    train, gen_train = samples["train"][0], samples["gen_train"][0]
    needed = needed_samples(train, gen_train, samples["val"][0], draws(bua, seed, len(train), len(gen_train)))
    llm = cached_llm({"backend": "openai", "openai": backend}, cache_dir)
    vocabulary = {str(v).lower() for v in pd.concat([split["behavior"], split["location"]]).unique()}
    frame, calls = write_answers(llm, needed, shares, positions=bua["positions"], settings=bua["answers"],
                                 vocabulary=vocabulary)
    write_parquet(frame, outputs["answers"])
    words = frame["answer"].str.split().str.len()
    summary = {**summarize_log(calls, backend["price_in_per_1k"], backend["price_out_per_1k"]),
               "samples": {p: len(c) for p, c in needed.items()}, "answers": int(len(frame)),
               "words_median": float(words.median()) if len(frame) else 0.0,
               "fact_recall_mean": round(float(frame["fact_recall"].mean()), 4) if len(frame) else None,
               "rule_words_median": float(frame["rule_answer"].str.split().str.len().median()) if len(frame) else 0.0,
               "model": llm.backend.identity()}
    write_json(outputs["summary"], summary)
    log.info("curriculum answers: %d written (%d backend calls this run, %d from the cache); %s", len(frame),
             llm.backend_calls, llm.cache_hits, ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary
