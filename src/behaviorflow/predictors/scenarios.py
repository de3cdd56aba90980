"""BehaviorGen's three downstream scenarios on the two-stage population -> individual paradigm.

- Pretraining (table 1): a population predictor trained on the real training users' events,
  or on those plus a generator's synthetic population; early stopping on the validation users'
  query events; evaluated on the test users' query events.
- Per-user fine-tuning (tables 2 and 3), from the real-pretrained predictor, for every test
  user: `none` (no fine-tuning), `real` (the user's support events), `synthetic` (only the
  generator's personal weeks for the user) and `real+synthetic`. Early stopping on the last
  `val_share` of the real support events (of the synthetic weeks for `synthetic`, which sees no
  real event of the user). Query events are never trained on: they are only predicted, each
  from the events before it.
Predictions of all test users are pooled and scored with `evaluation.evaluate`.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from behaviorflow.config import from_schema, schema_defaults, with_defaults
from behaviorflow.predictors.baselines import query_fingerprint
from behaviorflow.predictors.evaluation import evaluate, label_groups, long_rows
from behaviorflow.predictors.models import (
    FitSettings,
    ModelSettings,
    build_model,
    device_for,
    fit,
    predict_logits,
)
from behaviorflow.predictors.sequences import Vocab, contexts, query_examples, sequences, windows

log = logging.getLogger(__name__)
SETTINGS_FT = ("none", "real", "synthetic", "real+synthetic")


def finetune_defaults() -> "FitSettings":
    """Fine-tuning's own defaults (the schema's `predictors.finetune`)."""
    return FitSettings(**schema_defaults("properties/predictors/properties/finetune"))


@dataclass(frozen=True)
@from_schema("properties/predictors", local=("model",))
class PredictorSettings:
    model: ModelSettings = field(default_factory=ModelSettings)
    pretrain: FitSettings = field(default_factory=FitSettings)
    finetune: FitSettings = field(default_factory=finetune_defaults)
    val_share: float
    max_val_examples: int  # pretraining's early stopping scores an evenly spaced subsample
    device: str
    window_stride: int  # pretraining windows end every this many events (0: non-overlapping)

    @classmethod
    def from_config(cls, cfg: dict) -> "PredictorSettings":
        """From the `predictors` config block; keys left out take the schema's defaults."""
        full = with_defaults(cfg, "properties/predictors")
        model = ModelSettings(**{k: full[k] for k in ModelSettings.__dataclass_fields__})
        return cls(model, FitSettings(**full["pretrain"]), FitSettings(**full["finetune"]), full["val_share"],
                   full["max_val_examples"], full["device"], full["window_stride"])


def _window_len(kind: str, settings: ModelSettings) -> int:
    return settings.max_len + 1  # both models: max_len tokens built from max_len + 1 events


def _seed_all(seed: int, threads: int | None):
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pretrain(split: pd.DataFrame, synthetic: pd.DataFrame | None, kind: str, seed: int,
             settings: PredictorSettings, vocab: Vocab, threads: int | None = None):
    """Population predictor on real training users (+ a synthetic population). Returns
    (model, history, test metrics, label groups)."""
    _seed_all(seed, threads)
    train = split[split["part"] == "train"]
    seqs = sequences(train, vocab)
    if synthetic is not None and len(synthetic):
        seqs += sequences(synthetic, vocab)
    data = windows(seqs, _window_len(kind, settings.model), settings.window_stride)
    model = build_model(kind, vocab.sizes, vocab.n_labels, settings.model).to(device_for(settings.device))
    val_ctx, val_labels, _ = query_examples(split, vocab, "val", settings.model.max_len)
    keep = np.unique(np.linspace(0, len(val_labels) - 1, min(settings.max_val_examples, len(val_labels))).astype(int))
    val = (val_ctx[keep], val_labels[keep])
    history = fit(model, data, val, settings.pretrain, seed, settings.model.mask_prob, desc=f"pretrain {kind}")
    groups = label_groups(vocab.encode(train)[:, 0] - 2, vocab.n_labels)
    ctx, labels, _ = query_examples(split, vocab, "test", settings.model.max_len)
    metrics = evaluate(predict_logits(model, ctx), labels, groups)
    history.update(train_windows=int(len(data)), train_events=int(sum(len(s) for s in seqs)),
                   synthetic_events=int(len(synthetic)) if synthetic is not None else 0,
                   **query_fingerprint(split))
    return model, history, metrics, groups


def finetune_users(base_model, split: pd.DataFrame, personal: dict[str, pd.DataFrame], kind: str, seed: int,
                   settings: PredictorSettings, vocab: Vocab, threads: int | None = None):
    """Per-user fine-tuning of copies of `base_model` for every test user and setting.

    Returns (pooled metrics per (generator, setting), per-run log frame)."""
    _seed_all(seed, threads)
    length = _window_len(kind, settings.model)
    max_len = settings.model.max_len
    groups = label_groups(vocab.encode(split[split["part"] == "train"])[:, 0] - 2, vocab.n_labels)
    test = split[split["split"] == "test"].sort_values(["user_id", "event_idx"], kind="stable")
    syn_by_user = {g: dict(tuple(df.groupby("source_user"))) for g, df in personal.items()}
    logits: dict[tuple[str, str], list] = {}
    labels_all, runs = [], []

    def tuned(train_seqs, val_seq, n_fit, run_seed, key):
        model = copy.deepcopy(base_model)
        val = contexts(val_seq, np.arange(n_fit, len(val_seq)), max_len) if n_fit < len(val_seq) else None
        hist = fit(model, windows(train_seqs, length), val, settings.finetune, run_seed, settings.model.mask_prob)
        runs.append({"user_id": uid, "generator": key[0], "setting": key[1], "epochs": hist["epochs"],
                     "best_epoch": hist["best_epoch"]})
        return model

    for i, (uid, ev) in enumerate(test.groupby("user_id", sort=True)):
        hist_ids = vocab.encode(ev)
        part = ev["part"].to_numpy()
        support = hist_ids[part == "support"]
        targets = np.flatnonzero(part == "query")
        ctx, labels = contexts(hist_ids, targets, max_len)
        labels_all.append(labels)
        n_fit = max(1, math.ceil((1 - settings.val_share) * len(support)))

        def add(key, model):
            logits.setdefault(key, []).append(predict_logits(model, ctx))

        add(("none", "none"), base_model)
        add(("none", "real"), tuned([support[:n_fit]], support, n_fit, seed * 1000 + i, ("none", "real")))
        for g in sorted(personal):
            syn_ev = syn_by_user[g].get(uid)
            if syn_ev is None or len(syn_ev) < 2:
                log.warning("%s: no synthetic events for test user %s; its synthetic settings use the "
                            "predictor without them", g, uid)
                runs.append({"user_id": uid, "generator": g, "setting": "missing_synthetic", "epochs": 0,
                             "best_epoch": 0})
                add((g, "synthetic"), base_model)
                add((g, "real+synthetic"), tuned([support[:n_fit]], support, n_fit, seed * 1000 + i,
                                                 (g, "real+synthetic")))
                continue
            syn = sequences(syn_ev, vocab)[0]
            s_fit = max(1, math.ceil((1 - settings.val_share) * len(syn)))
            add((g, "synthetic"), tuned([syn[:s_fit]], syn, s_fit, seed * 1000 + i, (g, "synthetic")))
            add((g, "real+synthetic"), tuned([support[:n_fit], syn], support, n_fit, seed * 1000 + i,
                                             (g, "real+synthetic")))
    y = np.concatenate(labels_all)
    metrics = {key: evaluate(np.concatenate(parts), y, groups) for key, parts in logits.items()}
    return metrics, pd.DataFrame(runs)


def finetune_rows(metrics: dict, dataset: str, model: str, seed: int) -> pd.DataFrame:
    return pd.concat([long_rows(m, dataset=dataset, model=model, generator=g, setting=s, seed=seed)
                      for (g, s), m in sorted(metrics.items())], ignore_index=True)


def _load_split(split_path, slot_minutes: int):
    split = pd.read_parquet(split_path)
    return split, Vocab.from_split(split, slot_minutes)


def pretrain_predictor(split_path, synthetic_path, outputs: dict, dataset: str, model: str, train_set: str, seed: int,
                 cfg: dict, slot_minutes: int, threads: int | None = None) -> dict:
    """Rule pretrain_predictor: train, save the weights, write the table-1 rows and the history."""
    import torch

    from behaviorflow.atomic import tmp_sibling, write_csv, write_json

    split, vocab = _load_split(split_path, slot_minutes)
    synthetic = pd.read_parquet(synthetic_path) if synthetic_path else None
    settings = PredictorSettings.from_config(cfg)
    net, history, metrics, _ = pretrain(split, synthetic, model, seed, settings, vocab, threads)
    tmp = tmp_sibling(outputs["model"])
    torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp)
    tmp.replace(outputs["model"])
    generator = train_set.removeprefix("aug-") if train_set.startswith("aug-") else "none"
    setting = "real+synthetic" if train_set.startswith("aug-") else "real"
    write_csv(long_rows(metrics, dataset=dataset, model=model, generator=generator, setting=setting, seed=seed),
              outputs["metrics"])
    write_json(outputs["history"], history)
    log.info("pretrain %s %s seed %d: %d windows, %d epochs (best %d), acc1 %.4f", model, train_set, seed,
             history["train_windows"], history["epochs"], history["best_epoch"], metrics["acc1"])
    return metrics


def finetune_predictor(model_path, split_path, personal_paths: dict, outputs: dict, dataset: str, model: str, seed: int,
                 cfg: dict, slot_minutes: int, threads: int | None = None, users: set[str] | None = None,
                 columns: dict | None = None) -> pd.DataFrame:
    """Rule finetune_predictor: all test users (or `users` of them), all settings, one predictor and
    seed; `columns`: constant columns added to the rows (table 8's `days`)."""
    import torch

    from behaviorflow.atomic import write_csv
    from behaviorflow.predictors.models import build_model

    split, vocab = _load_split(split_path, slot_minutes)
    if users is not None:
        split = split[(split["split"] != "test") | split["user_id"].isin(users)]
    settings = PredictorSettings.from_config(cfg)
    base = build_model(model, vocab.sizes, vocab.n_labels, settings.model)
    base.load_state_dict(torch.load(model_path, map_location="cpu"))
    base = base.to(device_for(settings.device))
    personal = {g: pd.read_parquet(p) for g, p in sorted(personal_paths.items())}
    metrics, runs = finetune_users(base, split, personal, model, seed, settings, vocab, threads)
    rows = finetune_rows(metrics, dataset, model, seed).assign(**(columns or {}))
    write_csv(rows, outputs["metrics"])
    write_csv(runs, outputs["runs"])
    log.info("finetune %s seed %d: %d runs over %d test users", model, seed, len(runs), runs["user_id"].nunique())
    return rows
