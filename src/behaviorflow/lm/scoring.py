"""Label scoring: an LLM's log-likelihood of every candidate answer after a prompt, never free
generation plus string matching.

A candidate's score is the sum of the log-probabilities of its tokens and of the chat template's
end-of-turn marker after it (`examples.answer_suffix` renders both from the template, so nothing is
hard-coded and a label that is a prefix of another cannot win on its first tokens alone). The
prompts' common beginning (system message, label list) runs once for all queries; each prompt's
own part runs once per query on a copy of that cache; its cache is then repeated over the
candidates, which run together as one batch on top of it (`score_labels`). Padding sits after each candidate's
last token, where a causal model's earlier positions never see it.
"""

from __future__ import annotations

import logging

import numpy as np

from behaviorflow.lm.examples import answer_suffix

log = logging.getLogger(__name__)


def candidate_ids(tok, messages: list[dict], labels: list[str]) -> list[list[int]]:
    """Token ids of each label as the assistant's answer after `messages`, end-of-turn included."""
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    out = []
    for label in labels:
        ids = tok(answer_suffix(tok, messages, label, prompt), add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"label {label!r} renders to no tokens")
        out.append(ids)
    return out


def prompt_ids(tok, messages: list[dict]) -> list[int]:
    """The prompt with the template's generation prompt, as the model sees it before the answer."""
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]


def _candidate_batch(cands: list[list[int]], pad_id: int):
    import torch

    width = max(len(c) for c in cands)
    ids = torch.full((len(cands), width), pad_id, dtype=torch.long)
    real = torch.zeros((len(cands), width), dtype=torch.bool)
    for i, c in enumerate(cands):
        ids[i, :len(c)] = torch.tensor(c)
        real[i, :len(c)] = True
    return ids, real


def shared_prefix(prompts: list[list[int]]) -> int:
    """Length of the token prefix all prompts share, leaving each at least one token of its own
    (whose position gives the first answer token's log-probability)."""
    if not prompts:
        return 0
    n = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for p in prompts[1:]:
        k = 0
        while k < n and p[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


def score_labels(model, prompts: list[list[int]], cands: list[list[int]], pad_id: int = 0,
                 chunk: int = 128, progress: str | None = None) -> np.ndarray:
    """[n_prompts, n_candidates] summed log-likelihoods of every candidate after every prompt.

    One forward pass of the prompt (with its cache), then the candidates in batches of `chunk` on
    the repeated cache: the first token's log-probability comes from the prompt's last position,
    each later token's from the candidate's previous position."""
    import copy

    import torch

    device = next(model.parameters()).device
    ids_all, real_all = _candidate_batch(cands, pad_id)
    first = torch.tensor([c[0] for c in cands])
    out = np.zeros((len(prompts), len(cands)), dtype=np.float64)
    common = shared_prefix(prompts)
    rows = enumerate(prompts)
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, total=len(prompts), desc=progress, unit="query", mininterval=5.0)
    with torch.no_grad():
        # the prompts' common beginning (system message, label list, instructions) runs once
        base = model(input_ids=torch.tensor([prompts[0][:common]], device=device), use_cache=True).cache \
            if common else None
        for q, prompt in rows:
            pre = model(input_ids=torch.tensor([prompt[common:]], device=device), use_cache=True,
                        cache=copy.deepcopy(base) if base is not None else None)
            head = pre.logits[0, -1].float().log_softmax(-1).cpu()
            for b in range(0, len(cands), chunk):
                ids, real = ids_all[b:b + chunk].to(device), real_all[b:b + chunk].to(device)
                cache = copy.deepcopy(pre.cache)
                cache.batch_repeat_interleave(len(ids))
                logits = model(input_ids=ids, cache=cache, use_cache=True).logits
                # position k predicts token k + 1 of the candidate; the last position predicts nothing
                logp = logits[:, :-1].float().log_softmax(-1)
                nxt = logp.gather(-1, ids[:, 1:, None]).squeeze(-1) * real[:, 1:]
                out[q, b:b + len(ids)] = (head[first[b:b + chunk]] + nxt.sum(-1).cpu()).double().numpy()
    return out


def load_scorer(model_dir, adapter_dir=None, device: str = "auto", dtype: str = "float32", threads: int | None = None):
    """A base model (with a LoRA adapter merged in, when given) in eval mode, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorflow.lm.local import pick_device

    if threads:
        torch.set_num_threads(int(threads))
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return model.to(pick_device(device), dtype=getattr(torch, dtype)).eval(), tok
