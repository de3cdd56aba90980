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

from behaviorflow.sequences import MASK, PAD

log = logging.getLogger(__name__)
MODELS = ("sasrec", "bert4rec")


@dataclass(frozen=True)
class ModelSettings:
    max_len: int = 40
    hidden: int = 50
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.1
    mask_prob: float = 0.2  # BERT4Rec's masking rate in training


@dataclass(frozen=True)
class FitSettings:
    lr: float = 1e-3
    batch_size: int = 128
    max_epochs: int = 30
    patience: int = 3


def _torch():
    import torch

    return torch


def build_model(kind: str, sizes: tuple[int, int, int, int], n_labels: int, settings: ModelSettings):
    torch = _torch()
    nn = torch.nn
    if kind not in MODELS:
        raise ValueError(f"unknown predictor {kind!r}; choose one of {MODELS}")

    class SequenceModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.kind = kind
            self.embeddings = nn.ModuleList(nn.Embedding(n, settings.hidden, padding_idx=PAD) for n in sizes)
            self.position = nn.Embedding(settings.max_len, settings.hidden)
            self.dropout = nn.Dropout(settings.dropout)
            layer = nn.TransformerEncoderLayer(settings.hidden, settings.heads, dim_feedforward=settings.hidden * 4,
                                               dropout=settings.dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, settings.blocks, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(settings.hidden)
            self.head = nn.Linear(settings.hidden, n_labels)

        def forward(self, feats):  # feats [B, L, 4] -> logits [B, L, n_labels]
            length = feats.shape[1]
            x = sum(emb(feats[..., i]) for i, emb in enumerate(self.embeddings))
            x = self.dropout(x + self.position(torch.arange(length, device=feats.device)))
            eye = torch.eye(length, dtype=torch.bool, device=feats.device)
            # a query sees real keys (earlier ones only, for SASRec) and itself, so padded rows
            # are never fully masked (which would give NaN) and real rows never see padding
            allowed = (feats[..., 1] != PAD)[:, None, :] | eye
            if self.kind == "sasrec":
                allowed = allowed & torch.tril(torch.ones_like(eye))
            mask = ~allowed.repeat_interleave(settings.heads, dim=0)
            h = self.encoder(x, mask=mask)
            return self.head(self.norm(h))

    return SequenceModel()


def device_for(prefer: str = "auto") -> str:
    torch = _torch()
    if prefer != "auto":
        return prefer
    return "cuda" if torch.cuda.is_available() else "cpu"


def _sasrec_tokens(windows):
    """[B, L+1, 4] events -> [B, L, 4] tokens: event j's time with event j-1's behaviour and zone."""
    torch = _torch()
    prev, cur = windows[:, :-1], windows[:, 1:]
    real = cur[..., 1] != PAD
    tokens = torch.stack([prev[..., 0], cur[..., 1], cur[..., 2], prev[..., 3]], dim=-1)
    return torch.where(real[..., None], tokens, torch.zeros_like(tokens)), real


def _masked(events, masked):
    """Events with behaviour and zone replaced by the mask id where `masked`."""
    torch = _torch()
    out = events.clone()
    out[..., 0] = torch.where(masked, torch.full_like(out[..., 0], MASK), out[..., 0])
    out[..., 3] = torch.where(masked, torch.full_like(out[..., 3], MASK), out[..., 3])
    return out


def _training_batch(kind: str, windows, generator, mask_prob: float):
    """Inputs and targets (-100: ignored) for one batch of windows [B, L+1, 4]."""
    torch = _torch()
    if kind == "sasrec":
        tokens, real = _sasrec_tokens(windows)
        return tokens, torch.where(real, windows[:, 1:, 0] - 2, -100)
    events = windows[:, 1:]
    real = events[..., 1] != PAD
    masked = (torch.rand(events.shape[:2], generator=generator, device=windows.device) < mask_prob) & real
    # always train the next-event case too: mask each window's last event
    masked[:, -1] |= real[:, -1]
    return _masked(events, masked), torch.where(masked, events[..., 0] - 2, -100)


def model_inputs(kind: str, ctx):
    """Inputs for next-event prediction from `sequences.contexts` windows (target masked, last)."""
    if kind == "sasrec":
        return _sasrec_tokens(ctx)[0]
    return ctx[:, 1:]


def predict_logits(model, ctx: np.ndarray, batch_size: int = 1024):
    """Next-event logits [n, n_labels] for `sequences.contexts` windows [n, max_len + 1, 4]."""
    torch = _torch()
    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for b in range(0, len(ctx), batch_size):
            x = model_inputs(model.kind, torch.as_tensor(ctx[b:b + batch_size], device=device))
            out.append(model(x)[:, -1].float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, model.head.out_features), np.float32)


def _val_loss(model, val) -> float:
    torch = _torch()
    ctx, labels = val
    logits = torch.as_tensor(predict_logits(model, ctx))
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
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
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
            if not (targets != -100).any():
                continue
            logits = model(inputs)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                     ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()) * len(batch), n + len(batch)
        history["train_loss"].append(round(total / max(n, 1), 5))
        if val is None or len(val[1]) == 0:
            continue
        loss = _val_loss(model, val)
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
