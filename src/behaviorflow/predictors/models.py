"""Next-behaviour predictors in torch: SASRec (causal) and BERT4Rec (bidirectional, masked).

Both embed a token as the sum of behaviour, time-slot, weekday and zone embeddings plus a learned
position, run a Transformer encoder, and score every behaviour label with a full softmax. A
prediction knows the time (slot, weekday) of the event it predicts, never its behaviour or zone:
- SASRec (causal): token j carries event j's time with event j-1's behaviour and zone, and
  predicts event j's behaviour; attention sees tokens <= j only.
- BERT4Rec (bidirectional): tokens are events; masked events keep their time and lose behaviour
  and zone, and the model fills them in. The next event is predicted as a masked last event.
Inputs are windows of max_len + 1 events (`sequences.windows`, `sequences.contexts`).
`fit` trains with Adam and early stopping on the validation loss, restoring the best weights;
CUDA is used when present, CPU otherwise.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np

from behaviorflow.config import from_schema
from behaviorflow.predictors.sequences import MASK, OFFSET, PAD

log = logging.getLogger(__name__)
MODELS = ("sasrec", "bert4rec")


@dataclass(frozen=True)
@from_schema("properties/predictors")
class ModelSettings:
    max_len: int
    hidden: int
    blocks: int
    heads: int
    dropout: float
    mask_prob: float  # BERT4Rec's masking rate in training
    # width of the point-wise feed-forward layer; 0 = each paper's own: SASRec hidden (two d x d
    # layers, as Kang & McAuley and the reference implementation), BERT4Rec 4 x hidden
    ffn: int
    copy: bool  # the copy head (see `CopyHead`)


def ffn_width(kind: str, settings: ModelSettings) -> int:
    if settings.ffn:
        return settings.ffn
    return settings.hidden if kind == "sasrec" else 4 * settings.hidden


@dataclass(frozen=True)
@from_schema("$defs/fit")
class FitSettings:
    """Optimiser steps and early stopping of one training run (defaults: pretraining's)."""

    lr: float
    batch_size: int
    max_epochs: int
    patience: int
    l2_emb: float  # L2 on the embedding tables only (BUA App. G)
    bf16: bool  # bfloat16 autocast where the device runs bf16 matmuls natively


def _torch():
    import torch

    return torch


# Dropout masks on CPU come from numpy's PCG64 as raw 16-bit integers: torch's CPU bernoulli_
# draws one Mersenne-Twister number per element and was a fifth of SASRec's training time here.
# An element is dropped when its integer is below round(p * 65536), so p is exact to 1 / 65536.
def _dropout(x, p: float, rng: np.random.Generator | None):
    torch = _torch()
    if rng is None or p <= 0:
        return x
    if x.is_cuda:
        return torch.nn.functional.dropout(x, p, True)
    bits = np.frombuffer(rng.bytes(2 * x.numel()), dtype=np.uint16).reshape(x.shape)
    keep = torch.from_numpy(bits >= round(p * 65536))
    return x * keep / (1.0 - p)


def build_model(kind: str, sizes: tuple[int, int, int, int], n_labels: int, settings: ModelSettings):
    torch = _torch()
    nn = torch.nn
    if kind not in MODELS:
        raise ValueError(f"unknown predictor {kind!r}; choose one of {MODELS}")
    d, heads, p = settings.hidden, settings.heads, settings.dropout
    if d % heads:
        raise ValueError(f"hidden ({d}) must be divisible by heads ({heads})")

    class Block(nn.Module):
        """Pre-LayerNorm Transformer block: self-attention, then the point-wise feed-forward layer."""

        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
            width = ffn_width(kind, settings)
            self.ff1, self.ff2 = nn.Linear(d, width), nn.Linear(width, d)

        def forward(self, x, bias, rng):
            b, length, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(b, length, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            att = _dropout((q @ k.transpose(-1, -2) * (d // heads) ** -0.5 + bias).softmax(-1), p, rng)
            x = x + _dropout(self.out((att @ v).transpose(1, 2).reshape(b, length, d)), p, rng)
            hidden = _dropout(torch.relu(self.ff1(self.norm2(x))), p, rng)
            return x + _dropout(self.ff2(hidden), p, rng)

    class CopyHead(nn.Module):
        """Pointer over the window's own events (the repeat-aware idea of RepeatNet and CopyNet): the
        state predicting event t attends to the states that predicted the earlier events j and copies
        their behaviours, so a moment like an earlier one (same previous behaviour, similar time) votes
        for what followed it. p = g * softmax(head(h)) + (1 - g) * p_copy, g a learned gate; returns
        log p, so the training loss (cross-entropy) is the mixture's log-likelihood."""

        def __init__(self):
            super().__init__()
            self.query, self.key, self.gate = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, 1)

        def forward(self, h, head, feats, select):
            length = h.shape[1]
            if kind == "sasrec":  # state j predicts event j, whose behaviour is token j + 1's previous one
                values = torch.cat([feats[:, 1:, 0], torch.zeros_like(feats[:, :1, 0])], dim=1)
                allowed = torch.tril(torch.ones(length, length, dtype=torch.bool, device=h.device), -1)
            else:  # events whose behaviour is visible (not masked, not padding), anywhere but the query
                values = feats[..., 0]
                allowed = ~torch.eye(length, dtype=torch.bool, device=h.device)
            allowed = allowed & (values >= OFFSET)[:, None, :]  # [B, L, L]: query row, key column
            # every row against its window's keys in one batched matmul, then the selected rows
            scores = (self.query(h) @ self.key(h).transpose(1, 2) * d ** -0.5).float()
            has = allowed.any(-1, keepdim=True)
            att = scores.masked_fill(~allowed, float("-inf")).masked_fill(~has, 0.0).softmax(-1) * allowed
            labels = (values - OFFSET).clamp(min=0)[:, None, :].expand_as(att)
            p_copy = torch.zeros((*att.shape[:-1], n_labels), device=h.device).scatter_add_(-1, labels, att)
            hq = h
            if select is not None:
                hq, p_copy, has = h[select], p_copy[select], has[select]
            g = torch.where(has, torch.sigmoid(self.gate(hq).float()), torch.ones_like(has, dtype=torch.float32))
            p = g * head(hq).float().softmax(-1) + (1 - g) * p_copy
            return p.clamp(min=1e-12).log()

    class SequenceModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.kind = kind
            # SASRec's tokens add the previous event's slot and weekday (tables of their own),
            # BERT4Rec's the previous event's behaviour and zone
            tables = (*sizes, sizes[1], sizes[2]) if kind == "sasrec" else (*sizes, sizes[0], sizes[3])
            self.embeddings = nn.ModuleList(nn.Embedding(n, d, padding_idx=PAD) for n in tables)
            self.position = nn.Embedding(settings.max_len, d)
            self.blocks = nn.ModuleList(Block() for _ in range(settings.blocks))
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, n_labels)
            self.copy = CopyHead() if settings.copy else None
            self.rng: np.random.Generator | None = None  # dropout's generator (`fit` seeds it)

        def forward(self, feats, select=None):
            """feats [B, L, 4] -> logits [B, L, n_labels]; with `select` ([B, L] bool) only the
            selected positions' logits [n, n_labels] (the label head and softmax are the costly part)."""
            x = self.hidden(feats)
            if self.copy is not None:
                return self.copy(x, self.head, feats, select)
            return self.head(x if select is None else x[select])

        def hidden(self, feats):
            """feats [B, L, 4] -> the last block's normalised states [B, L, d]: the penultimate layer
            (the label head is the last), what BUA's projector reads."""
            length = feats.shape[1]
            rng = self.rng if self.training else None
            x = sum(emb(feats[..., i]) for i, emb in enumerate(self.embeddings))
            x = _dropout(x + self.position(torch.arange(length, device=feats.device)), p, rng)
            eye = torch.eye(length, dtype=torch.bool, device=feats.device)
            # a query sees real keys (earlier ones only, for SASRec) and itself, so padded rows
            # are never fully masked (which would give NaN) and real rows never see padding
            allowed = (feats[..., 1] != PAD)[:, None, :] | eye
            if self.kind == "sasrec":
                allowed = allowed & torch.tril(torch.ones_like(eye))
            bias = torch.zeros(allowed.shape, device=feats.device).masked_fill_(~allowed, float("-inf"))[:, None]
            for block in self.blocks:
                x = block(x, bias, rng)
            return self.norm(x)

    return SequenceModel()


def device_for(prefer: str = "auto") -> str:
    torch = _torch()
    if prefer != "auto":
        return prefer
    return "cuda" if torch.cuda.is_available() else "cpu"


def _sasrec_tokens(windows):
    """[B, L+1, 4] events -> [B, L, 6] tokens: event j's time (slot, weekday) with all of event
    j-1 (behaviour, zone, slot, weekday). Carrying the previous event's time lets one attention
    hop match the target's time against earlier events' times (the same slot yesterday) and
    lets the model see the gap since the previous event (a follow-up minutes later or a new
    session hours later)."""
    torch = _torch()
    prev, cur = windows[:, :-1], windows[:, 1:]
    real = cur[..., 1] != PAD
    tokens = torch.stack([prev[..., 0], cur[..., 1], cur[..., 2], prev[..., 3], prev[..., 1], prev[..., 2]], dim=-1)
    return torch.where(real[..., None], tokens, torch.zeros_like(tokens)), real


def _masked(events, masked):
    """Events with behaviour and zone replaced by the mask id where `masked`."""
    torch = _torch()
    out = events.clone()
    out[..., 0] = torch.where(masked, torch.full_like(out[..., 0], MASK), out[..., 0])
    out[..., 3] = torch.where(masked, torch.full_like(out[..., 3], MASK), out[..., 3])
    return out


def _bert4rec_tokens(windows):
    """[B, L+1, 4] events (masked ones already masked) -> [B, L, 6] tokens: each event with the
    previous event's behaviour and zone beside it, so a masked target carries what came just
    before it (as SASRec's tokens do) and a masked event stays hidden in its successor too."""
    torch = _torch()
    prev, cur = windows[:, :-1], windows[:, 1:]
    tokens = torch.cat([cur, prev[..., [0, 3]]], dim=-1)
    return torch.where((cur[..., 1] != PAD)[..., None], tokens, torch.zeros_like(tokens))


def _training_batch(kind: str, windows, generator, mask_prob: float):
    """Inputs and targets (-100: ignored) for one batch of windows [B, L+1, 4]."""
    torch = _torch()
    if kind == "sasrec":
        tokens, real = _sasrec_tokens(windows)
        return tokens, torch.where(real, windows[:, 1:, 0] - 2, -100)
    real = windows[..., 1] != PAD
    masked = (torch.rand(windows.shape[:2], generator=generator, device=windows.device) < mask_prob) & real
    masked[:, 0] = False  # the first event is only the second's predecessor
    # always train the next-event case too: mask each window's last event
    masked[:, -1] |= real[:, -1]
    tokens = _bert4rec_tokens(_masked(windows, masked))
    return tokens, torch.where(masked[:, 1:], windows[:, 1:, 0] - 2, -100)


def model_inputs(kind: str, ctx):
    """Inputs for next-event prediction from `sequences.contexts` windows (target masked, last)."""
    if kind == "sasrec":
        return _sasrec_tokens(ctx)[0]
    return _bert4rec_tokens(ctx)


def autocast(model, enabled: bool):
    """bfloat16 autocast on the model's device when `enabled` and the device has native bf16 matmuls
    (the label head's scores are cast back to float32 before any loss or softmax)."""
    from behaviorflow.devices import bf16_supported

    device = next(model.parameters()).device.type
    return _torch().autocast(device, dtype=_torch().bfloat16, enabled=enabled and bf16_supported(device))


def predict_logits(model, ctx: np.ndarray, batch_size: int = 1024, bf16: bool = False):
    """Next-event logits [n, n_labels] for `sequences.contexts` windows [n, max_len + 1, 4]."""
    torch = _torch()
    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad(), autocast(model, bf16):
        for b in range(0, len(ctx), batch_size):
            x = model_inputs(model.kind, torch.as_tensor(ctx[b:b + batch_size], device=device))
            last = torch.zeros(x.shape[:2], dtype=torch.bool, device=device)
            last[:, -1] = True
            out.append(model(x, last).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.head.out_features), np.float32)


def _val_loss(model, val, bf16: bool) -> float:
    torch = _torch()
    ctx, labels = val
    logits = torch.as_tensor(predict_logits(model, ctx, bf16=bf16))
    return float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels)))


def fit(model, train_windows: np.ndarray, val: tuple[np.ndarray, np.ndarray] | None, settings: FitSettings,
        seed: int, mask_prob: float = 0.2, desc: str | None = None) -> dict:
    """Train on windows; early stopping on the next-event loss of `val` (contexts, labels).

    Returns a history dict; the model ends with the weights of its best validation epoch (or the
    last epoch without validation data)."""
    torch = _torch()
    if len(train_windows) == 0:
        return {"epochs": 0, "best_epoch": 0, "val_loss": [], "train_loss": []}
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    model.rng = np.random.default_rng(seed)
    embeddings = [p for name, p in model.named_parameters() if name.startswith(("embeddings.", "position."))]
    rest = [p for name, p in model.named_parameters() if not name.startswith(("embeddings.", "position."))]
    groups = [{"params": embeddings, "weight_decay": settings.l2_emb}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.Adam(groups, lr=settings.lr, fused=True)  # one kernel per step
    data = torch.as_tensor(train_windows)
    best, best_state, best_epoch, bad = float("inf"), None, 0, 0
    history = {"train_loss": [], "val_loss": []}
    epochs = range(settings.max_epochs)
    if desc:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc=desc, unit="epoch", mininterval=2.0)
    for epoch in epochs:
        model.train()
        order = torch.randperm(len(data), generator=gen)
        total, n = 0.0, 0
        for b in range(0, len(order), settings.batch_size):
            batch = data[order[b:b + settings.batch_size]]
            inputs, targets = _training_batch(model.kind, batch, gen, mask_prob)
            inputs, targets = inputs.to(device), targets.to(device)
            scored = targets != -100
            if not scored.any():
                continue
            with autocast(model, settings.bf16):
                logits = model(inputs, scored)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets[scored])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()) * len(batch), n + len(batch)
        history["train_loss"].append(round(total / max(n, 1), 5))
        if val is None or len(val[1]) == 0:
            continue
        loss = _val_loss(model, val, settings.bf16)
        history["val_loss"].append(round(loss, 5))
        if loss < best - 1e-5:
            best, best_state, best_epoch, bad = loss, copy.deepcopy(model.state_dict()), epoch + 1, 0
        else:
            bad += 1
            if bad >= settings.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    history.update(epochs=len(history["train_loss"]), best_epoch=best_epoch or len(history["train_loss"]))
    return history
