"""Training examples for the one training module: conversations tokenised for completion-only loss.

Prompt and answer are tokenised apart and the prompt's labels are -100, so the loss can never see a
prompt token; the answer ends with the chat template's own end-of-turn marker. A conversation may
hold several assistant rounds (BUA's multi-round dialogue); each token knows its round, which the
round-balanced loss weights use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IGNORE = -100


@dataclass
class Example:
    """One tokenised training example: labels are -100 outside the answers; `weights` per token."""

    input_ids: list[int]
    labels: list[int]
    weights: list[float] | None = None
    rounds: list[int] | None = None  # answer round of each token (-1: prompt)
    extra: dict = field(default_factory=dict)  # per-example inputs for `inject` (e.g. encoder states)


def _render(tok, messages, add_generation_prompt: bool) -> str:
    return tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)


def answer_suffix(tok, messages: list[dict], answer: str, prompt: str | None = None) -> str:
    """The text the chat template adds for one assistant turn after `messages` (whose generation
    prompt is `prompt`, rendered here when not given): the answer and the model's own end-of-turn
    marker (taken from the template, never hard-coded)."""
    prompt = _render(tok, messages, True) if prompt is None else prompt
    full = _render(tok, [*messages, {"role": "assistant", "content": answer}], False)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders an assistant turn that does not extend the generation "
                         "prompt; completion-only labels need a template whose turns only append text")
    return full[len(prompt):].rstrip()


def encode_chat(tok, messages: list[dict], max_length: int) -> Example | None:
    """Tokenise a conversation whose assistant turns are the answers (one or several rounds).

    Each segment is tokenised apart: the text before an assistant turn (labels -100) and the turn
    itself with its end-of-turn marker (labels = ids). Returns None when no answer token fits."""
    ids, labels, rounds = [], [], []
    done = 0  # characters of the rendered conversation already tokenised
    n_round = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tok, messages[:i], True)
        prompt_part = before[done:]
        answer = answer_suffix(tok, messages[:i], message["content"], before)
        p = tok(prompt_part, add_special_tokens=False)["input_ids"] if done else \
            tok.apply_chat_template(messages[:i], add_generation_prompt=True, tokenize=True,
                                    return_dict=True)["input_ids"]
        a = tok(answer, add_special_tokens=False)["input_ids"]
        ids += p + a
        labels += [IGNORE] * len(p) + a
        rounds += [-1] * len(p) + [n_round] * len(a)
        done = len(before) + len(answer)
        n_round += 1
    if n_round == 0:
        raise ValueError("a training conversation needs at least one assistant turn (the answer)")
    ids, labels, rounds = ids[:max_length], labels[:max_length], rounds[:max_length]
    if all(lab == IGNORE for lab in labels):
        return None
    return Example(ids, labels, rounds=rounds)


def encode_completion(tok, messages: list[dict], completion: str, max_length: int) -> Example | None:
    """A prompt (`messages`) and one answer: the common single-round case of `encode_chat`."""
    return encode_chat(tok, [*messages, {"role": "assistant", "content": completion}], max_length)


def round_balanced_weights(rounds: list[int]) -> list[float]:
    """BUA's round-balanced loss: round i weighs total answer tokens / (rounds x tokens of round i),
    so every round counts the same however long its answer; 0 on prompt tokens."""
    counts: dict[int, int] = {}
    for r in rounds:
        if r >= 0:
            counts[r] = counts.get(r, 0) + 1
    total = sum(counts.values())
    return [total / (len(counts) * counts[r]) if r >= 0 else 0.0 for r in rounds]


def collate(pad_id: int):
    """Right-padded batches of Examples as tensors (extras stacked when they are tensors)."""

    def fn(batch: list[Example]) -> dict:
        import torch

        width = max(len(e.input_ids) for e in batch)
        out = {
            "input_ids": torch.tensor([e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in batch]),
            "attention_mask": torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids))
                                            for e in batch]),
            "labels": torch.tensor([e.labels + [IGNORE] * (width - len(e.labels)) for e in batch]),
        }
        if any(e.weights is not None for e in batch):
            out["weights"] = torch.tensor([(e.weights or [1.0] * len(e.labels)) + [0.0] * (width - len(e.labels))
                                           for e in batch], dtype=torch.float32)
        for key in batch[0].extra:
            out[key] = torch.stack([torch.as_tensor(e.extra[key]) for e in batch])
        return out

    return fn
