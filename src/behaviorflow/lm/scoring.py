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
    """The candidates' tokens that other tokens are predicted from (all but each one's last) as one
    token row: ids, each token's offset inside its candidate, and which earlier tokens of the row it
    may see (the earlier tokens of its own candidate)."""
    import torch

    inner = [c[:-1] for c in cands]
    ids = torch.tensor([t for c in inner for t in c], dtype=torch.long)
    offset = torch.tensor([k for c in inner for k in range(len(c))], dtype=torch.long)
    owner = torch.tensor([i for i, c in enumerate(inner) for _ in c], dtype=torch.long)
    sees = (owner[:, None] == owner[None, :]) & (offset[None, :] <= offset[:, None])
    return ids, offset, sees


class _Candidates:
    """Every candidate as one token tree (`_tree`) and which logits give their log-probabilities:
    the first token's from the prompt's last position, each later token's from its own candidate's
    previous position (a candidate's last token is only predicted, so it is not in the tree)."""

    def __init__(self, cands: list[list[int]], device):
        import torch

        self.ids, self.offset, self.sees = (x.to(device) for x in _tree(cands))
        self.n = len(cands)
        self.next = torch.tensor([t for c in cands for t in c[1:]], device=device)
        self.next_owner = np.array([i for i, c in enumerate(cands) for _ in c[1:]], dtype=np.int64)
        self.first = torch.tensor([c[0] for c in cands], device=device)

    def inputs(self, own: list[list[int]], past, start, pad_id: int, dtype):
        """One forward's ids, positions and 4-D additive mask for rows that continue a cache: each
        row's own prompt tokens (left-padded to the longest), then all candidates side by side.
        `past` [n, P] (bool) are the cached slots each row sees, `start` [n] each row's position
        after them; a candidate sees those slots, its row's prompt and its own earlier tokens."""
        import torch

        device = past.device
        n, width, cached = len(own), max(len(o) for o in own), past.shape[1]
        total = width + len(self.ids)
        ids = torch.full((n, total), pad_id, dtype=torch.long, device=device)
        ids[:, width:] = self.ids
        pos = start[:, None].expand(n, total).clone()
        sees = torch.zeros((n, total, cached + total), dtype=torch.bool, device=device)
        sees[:, :, :cached] = past[:, None, :]  # padding sees them too: no row of the mask is empty
        causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
        for r, o in enumerate(own):
            pad = width - len(o)
            ids[r, pad:width] = torch.tensor(o, device=device)
            pos[r, pad:width] = start[r] + torch.arange(len(o), device=device)
            pos[r, width:] = start[r] + len(o) + self.offset
            sees[r, pad:width, cached + pad:cached + width] = causal[pad:, pad:]
            sees[r, width:, cached + pad:cached + width] = True  # candidates see the whole prompt
            sees[r, width:, cached + width:] = self.sees
        mask = torch.zeros(sees.shape, dtype=dtype, device=device).masked_fill_(~sees, torch.finfo(dtype).min)
        return ids, pos, mask[:, None], width

    def scores(self, logits) -> np.ndarray:
        """[n, candidates] summed log-likelihoods from the logits kept at `keep(width)`."""
        logp = logits.float().log_softmax(-1)  # (n, 1 + inner tokens, vocabulary)
        block = logp[:, 0, self.first].cpu().double().numpy()  # each candidate's first token
        later = logp[:, 1:].gather(-1, self.next.expand(len(block), -1)[..., None]).squeeze(-1).cpu().numpy()
        for r in range(len(block)):
            block[r] += np.bincount(self.next_owner, weights=later[r], minlength=self.n)
        return block

    def keep(self, width: int):
        import torch

        return torch.arange(width - 1, width + len(self.ids), device=self.first.device)

    def forward(self, model, own, past, start, pad_id: int, cache=None, embed=None) -> np.ndarray:
        """Score every candidate after each row's `own` tokens, on `cache` (holding `past`'s slots)."""
        ids, pos, mask, width = self.inputs(own, past, start, pad_id, next(model.parameters()).dtype)
        inputs = {"input_ids": ids} if embed is None else {"inputs_embeds": embed(ids)}
        logits = model(**inputs, position_ids=pos, attention_mask=mask, cache=cache, use_cache=cache is not None,
                       logits_to_keep=self.keep(width)).logits
        return self.scores(logits)


def score_labels(model, prompts: list[list[int]], cands: list[list[int]], pad_id: int = 0,
                 chunk: int = 8, progress: str | None = None, embed=None,
                 prefix_limit: int | None = None) -> np.ndarray:
    """[n_prompts, n_candidates] summed log-likelihoods of every candidate after every prompt.

    The prompts' common beginning runs once (its cache is reused by every query). Then `chunk`
    queries at a time run in one forward pass, one row each: the query's own prompt tokens
    (left-padded to the longest in the chunk) followed by *all* candidates side by side (each but
    its last token, which is only predicted), with an attention mask in which a candidate token sees
    the prefix, its query's prompt and the earlier tokens of its own candidate only, and position ids
    that continue the prompt for every candidate (a token tree). The candidates' first tokens take
    their log-probabilities from the prompt's last position, later tokens from their own candidate's
    previous position; the LM head runs on those positions only.

    `embed(rows, ids)`, when given, turns a chunk's token ids into the input embeddings (BUA scatters
    its encoder states in); `prefix_limit` caps the shared prefix (tokens that need `embed` must not
    run in it)."""
    import copy

    import torch

    device = next(model.parameters()).device
    tree = _Candidates(cands, device)
    out = np.zeros((len(prompts), len(cands)), dtype=np.float64)
    common = shared_prefix(prompts) if prefix_limit is None else min(shared_prefix(prompts), prefix_limit)
    batches = [range(b, min(b + chunk, len(prompts))) for b in range(0, len(prompts), chunk)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(prompts), desc=progress, unit="query", mininterval=5.0)
    with torch.no_grad():
        # the prompts' common beginning (system message, label list, instructions) runs once
        base = model(input_ids=torch.tensor([prompts[0][:common]], device=device), use_cache=True).cache \
            if common else None
        for rows in batches:
            n = len(rows)
            cache = None
            if base is not None:
                cache = copy.deepcopy(base)
                cache.batch_repeat_interleave(n)
            out[rows.start:rows.stop] = tree.forward(
                model, [prompts[q][common:] for q in rows], torch.ones((n, common), dtype=torch.bool, device=device),
                torch.full((n,), common, device=device), pad_id, cache,
                None if embed is None else (lambda ids, rows=rows: embed(rows, ids)))
            if bar is not None:
                bar.update(n)
    if bar is not None:
        bar.close()
    return out


def score_continuations(model, cache, past, own: list[list[int]], cands: list[list[int]],
                        pad_id: int = 0) -> np.ndarray:
    """[rows, n_candidates] like `score_labels`, for rows whose prompts already sit in `cache` up to
    their `own` last tokens (a dialogue's key/value cache after its rounds, `bua.infer.BuaModel`):
    `past` [rows, cached] marks the cached slots each row attends to (left padding and generated
    tokens left out); each row's positions continue from its count of them."""
    import torch

    tree = _Candidates(cands, past.device)
    with torch.no_grad():
        return tree.forward(model, own, past, past.sum(1), pad_id, cache)


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
