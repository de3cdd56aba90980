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


def _tree(cands: list[list[int]]):
    """All candidates as one token row: ids, each token's offset inside its candidate, and which
    earlier tokens of the row it may see (the earlier tokens of its own candidate)."""
    import torch

    ids = torch.tensor([t for c in cands for t in c])
    offset = torch.tensor([k for c in cands for k in range(len(c))])
    owner = torch.tensor([i for i, c in enumerate(cands) for _ in c])
    sees = (owner[:, None] == owner[None, :]) & (offset[None, :] <= offset[:, None])
    return ids, offset, sees


def score_labels(model, prompts: list[list[int]], cands: list[list[int]], pad_id: int = 0,
                 chunk: int = 8, progress: str | None = None, embed=None,
                 prefix_limit: int | None = None) -> np.ndarray:
    """[n_prompts, n_candidates] summed log-likelihoods of every candidate after every prompt.

    The prompts' common beginning runs once (its cache is reused by every query). Then `chunk`
    queries at a time run in one forward pass, one row each: the query's own prompt tokens
    (left-padded to the longest in the chunk) followed by *all* candidates side by side, with an
    attention mask in which a candidate token sees the prefix, its query's prompt and the earlier
    tokens of its own candidate only, and position ids that continue the prompt for every candidate
    (a token tree). The candidates' first tokens take their log-probabilities from the prompt's last
    position, later tokens from their own candidate's previous position; the LM head runs on those
    positions only.

    `embed(rows, ids)`, when given, turns a chunk's token ids into the input embeddings (BUA scatters
    its encoder states in); `prefix_limit` caps the shared prefix (tokens that need `embed` must not
    run in it)."""
    import copy

    import torch

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    tree_ids, tree_offset, tree_sees = (x.to(device) for x in _tree(cands))
    n_tree = len(tree_ids)
    starts = np.cumsum([0] + [len(c) for c in cands])[:-1]
    out = np.zeros((len(prompts), len(cands)), dtype=np.float64)
    common = shared_prefix(prompts) if prefix_limit is None else min(shared_prefix(prompts), prefix_limit)
    batches = [range(b, min(b + chunk, len(prompts))) for b in range(0, len(prompts), chunk)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(prompts), desc=progress, unit="query", mininterval=5.0)
    # logits kept: the prompt's last position, then each candidate token that has a next token
    inner = [int(s) + k for s, c in zip(starts, cands) for k in range(len(c) - 1)]
    nxt = torch.tensor([t for c in cands for t in c[1:]], device=device)
    nxt_owner = np.array([i for i, c in enumerate(cands) for _ in c[1:]], dtype=np.int64)
    first = torch.tensor([c[0] for c in cands], device=device)
    with torch.no_grad():
        # the prompts' common beginning (system message, label list, instructions) runs once
        base = model(input_ids=torch.tensor([prompts[0][:common]], device=device), use_cache=True).cache \
            if common else None
        for rows in batches:
            own = [prompts[q][common:] for q in rows]
            width = max(len(o) for o in own)
            n, total = len(own), width + n_tree
            ids = torch.full((n, total), pad_id, dtype=torch.long, device=device)
            ids[:, width:] = tree_ids
            pos = torch.full((n, total), common, dtype=torch.long, device=device)
            sees = torch.zeros((n, total, common + total), dtype=torch.bool, device=device)
            sees[:, :, :common] = True  # everything sees the common prefix (padding too: no empty rows)
            causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
            for r, o in enumerate(own):
                pad = width - len(o)
                ids[r, pad:width] = torch.tensor(o, device=device)
                pos[r, pad:width] = common + torch.arange(len(o), device=device)
                pos[r, width:] = common + len(o) + tree_offset
                sees[r, pad:width, common + pad:common + width] = causal[pad:, pad:]
                sees[r, width:, common + pad:common + width] = True  # candidates see the whole prompt
                sees[r, width:, common + width:] = tree_sees
            mask = torch.zeros(sees.shape, dtype=dtype, device=device).masked_fill_(~sees, torch.finfo(dtype).min)
            cache = None
            if base is not None:
                cache = copy.deepcopy(base)
                cache.batch_repeat_interleave(n)
            keep = torch.tensor([width - 1] + [width + i for i in inner], device=device)
            inputs = {"input_ids": ids} if embed is None else {"inputs_embeds": embed(rows, ids)}
            logits = model(**inputs, position_ids=pos, attention_mask=mask[:, None], cache=cache,
                           use_cache=cache is not None, logits_to_keep=keep).logits
            logp = logits.float().log_softmax(-1)  # (n, 1 + inner tokens, vocabulary)
            head = logp[:, 0, first]  # (n, candidates): each candidate's first token
            later = logp[:, 1:].gather(-1, nxt.expand(n, -1)[..., None]).squeeze(-1).cpu().numpy()
            block = head.cpu().double().numpy()
            for r in range(n):
                block[r] += np.bincount(nxt_owner, weights=later[r], minlength=len(cands))
            out[rows.start:rows.stop] = block
            if bar is not None:
                bar.update(n)
    if bar is not None:
        bar.close()
    return out


def load_scorer(model_dir, adapter_dir=None, device: str = "auto", dtype: str = "float32", threads: int | None = None):
    """A base model (with a LoRA adapter merged in, when given) in eval mode, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorflow.lm.local import contiguous_lm_head, pick_device

    if threads:
        torch.set_num_threads(int(threads))
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return contiguous_lm_head(model.to(pick_device(device), dtype=getattr(torch, dtype)).eval()), tok
