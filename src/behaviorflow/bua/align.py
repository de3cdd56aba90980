"""BUA's sequence-embedding alignment (§3.2, App. M): the workflow's own pretrained SASRec, frozen,
encodes a user's recent events; its penultimate hidden states at the last `positions` positions go
through a two-layer MLP projector into the LLM's input-embedding space, and one vectorised scatter
writes them where the prompt holds placeholder tokens.

The projector is an extra of the one training module (`lm.tuning`: trained, frozen, saved and
reloaded beside the LoRA adapter by the stage's freeze map); `inject` is the hook that module calls
on the input embeddings before the LLM runs.
"""

from __future__ import annotations

import numpy as np

STATES = "states"  # the Example.extra / batch key holding each example's encoder states [positions, d]


def placeholder_token(tok, setting: str = "auto") -> tuple[str, int]:
    """The token the prompts carry where the sequence embeddings go: `setting` (a string that must be
    one token), or with `auto` the first special token of the tokenizer that its chat template never
    renders and that is not the end-of-sequence or padding token (SmolLM2: `<|endoftext|>`)."""
    if setting != "auto":
        ids = tok(setting, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"bua.placeholder {setting!r} is {len(ids)} tokens for this tokenizer; it must be one "
                             "(a special token the chat template does not use)")
        return setting, ids[0]
    turns = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
             {"role": "assistant", "content": "a"}]
    rendered = tok.apply_chat_template(turns, tokenize=False)
    for token in tok.all_special_tokens:
        if token not in rendered and token not in (tok.eos_token, tok.pad_token):
            return token, tok.convert_tokens_to_ids(token)
    raise ValueError("the tokenizer has no special token its chat template leaves unused: set bua.placeholder "
                     "to a string that is one token")


def projector(encoder_dim: int, llm_dim: int, seed: int):
    """The two-layer MLP of eq. (1), seeded."""
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(encoder_dim, llm_dim), nn.GELU(), nn.Linear(llm_dim, llm_dim))
    with torch.no_grad():
        for layer in (mlp[0], mlp[2]):
            bound = 1.0 / np.sqrt(layer.in_features)
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)
    return mlp


def make_inject(placeholder_id: int, key: str = "projector"):
    """The `inject` hook: writes `extras[key](batch[STATES])` over the input embeddings at the
    placeholder tokens, the k-th placeholder of a row taking that row's k-th state, in one
    `masked_scatter` (no per-example loop). A row must hold exactly as many placeholders as states."""

    def inject(extras, embeds, batch):
        import torch

        at = batch["input_ids"] == placeholder_id  # [B, T]
        states = batch[STATES]  # [B, K, d_encoder]
        counts = at.sum(1)
        if not torch.all(counts == states.shape[1]):
            raise ValueError(f"each row needs {states.shape[1]} placeholder tokens, one per encoder state; "
                             f"found {sorted(set(counts.tolist()))} (a prompt cut by max_length?)")
        projected = extras[key](states.to(embeds.dtype))  # [B, K, d_llm]
        return embeds.masked_scatter(at[..., None], projected.to(embeds.dtype))

    return inject


def sequence_states(model, ctx: np.ndarray, positions: int, batch_size: int = 512,
                    embedding: str = "sequence") -> np.ndarray:
    """[n, positions, d] float32 at the last `positions` positions of `sequences.contexts` windows
    (the target's own position last: it carries the target's time, never its behaviour or zone):
    the frozen SASRec's penultimate hidden states (`sequence`, App. M), or, the ablation's item
    embeddings, its input embedding of each event alone (`item`: no attention over the sequence)."""
    import torch

    from behaviorflow.predictors.models import model_inputs

    if model.kind != "sasrec":
        raise ValueError(f"BUA's encoder is the pretrained SASRec (App. M), not {model.kind}")
    if embedding not in ("sequence", "item"):
        raise ValueError(f"bua embedding must be sequence or item, not {embedding!r}")
    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for b in range(0, len(ctx), batch_size):
            x = model_inputs(model.kind, torch.as_tensor(ctx[b:b + batch_size], device=device))
            if embedding == "sequence":
                h = model.hidden(x)
            else:
                h = sum(emb(x[..., i]) for i, emb in enumerate(model.embeddings))
            out.append(h[:, -positions:].float().cpu())
    d = model.norm.normalized_shape[0]
    return torch.cat(out).numpy() if out else np.zeros((0, positions, d), np.float32)


def encoder_windows(split, vocab, keys: list[tuple[str, int]], max_len: int) -> np.ndarray:
    """`sequences.contexts` windows [n, max_len + 1, 4] of the events `keys` (user_id, event_idx):
    each user's earlier events (every part) and the target, masked."""
    from behaviorflow.data.events import in_order
    from behaviorflow.predictors.sequences import contexts

    wanted: dict[str, list[int]] = {}
    for uid, idx in keys:
        wanted.setdefault(uid, []).append(idx)
    by_key = {}
    users = in_order(split[split["user_id"].isin(list(wanted))])
    for uid, g in users.groupby("user_id", sort=True):
        position = {int(e): i for i, e in enumerate(g["event_idx"])}
        targets = np.array([position[i] for i in wanted[uid]], dtype=np.int64)
        ctx, _ = contexts(vocab.encode(g), targets, max_len)
        by_key.update({(uid, i): c for i, c in zip(wanted[uid], ctx)})
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise ValueError(f"{len(missing)} sample(s) are not events of the split, e.g. {missing[0]}")
    return np.stack([by_key[k] for k in keys]) if keys else np.zeros((0, max_len + 1, 4), np.int64)
