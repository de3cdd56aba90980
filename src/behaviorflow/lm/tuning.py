"""One trainer for every LoRA / projector run: `transformers.Trainer` with a peft LoRA adapter.

A run is configuration, not code (trl's `sft.py` shape): `tune(model_dir, train, out_dir, settings)`
builds the model, the peft config and a `Trainer`, then `.train()`. The Trainer supplies the
warm-up + cosine schedule, gradient accumulation, evaluation with early stopping, checkpoints and
resume (a run killed mid-training and started again continues from its last checkpoint),
seeding, bf16 autocast and data-parallel training under `torchrun` (DDP; gloo on CPU).

What BehaviorLM and BUA add goes through three hooks, designed here and tested on a tiny model:
- `extras`: trainable modules beside the adapter (BUA's projector), saved and reloaded with it;
  `inject(extras, embeddings, batch)` edits the input embeddings before the LM runs;
- per-token loss weights (`Example.weights`; BUA's round-balanced loss);
- a freeze map (`settings.train`): which of `lora` and the extras' names train in this stage.

Supervision is completion-only by construction (`lm.examples`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from behaviorflow.config import from_schema
from behaviorflow.devices import bf16_supported
from behaviorflow.lm.examples import (
    IGNORE,
    Example,
    collate,
    encode_chat,
    encode_completion,
    round_balanced_weights,
)

__all__ = ["TuningSettings", "Example", "encode_chat", "encode_completion", "round_balanced_weights", "tune",
           "token_loss", "apply_freeze_map", "load_trainable", "save_trainable", "split_eval", "IGNORE"]

log = logging.getLogger(__name__)

TRAINABLE_FILE = "trainable.safetensors"  # the adapter's and the extras' weights, nothing frozen
REPORT_FILE = "training_report.json"


@dataclass(frozen=True)
@from_schema("$defs/tuning")
class TuningSettings:
    """Everything one training run needs; defaults live in the config schema (`$defs/tuning`)."""

    rank: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]
    layers: int  # adapt only the top N transformer blocks (0: all)
    learning_rate: float
    epochs: float
    max_steps: int  # > 0 overrides epochs
    batch_size: int
    grad_accum: int
    warmup_ratio: float
    scheduler: str
    weight_decay: float
    max_examples: int
    max_length: int
    eval_share: float  # held-out share of the examples for evaluation and early stopping (0: none)
    eval_steps: int
    patience: int  # evaluations without improvement before stopping (0: never stop early)
    save_steps: int
    seed: int
    bf16: bool
    gradient_checkpointing: bool
    length_buckets: bool  # batches of similar-length examples in a seeded random order
    train: tuple[str, ...]  # the freeze map: what trains in this stage ('lora', extras' names)

    def __post_init__(self):
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        object.__setattr__(self, "train", tuple(self.train))


def _wrapped_class():
    from torch import nn

    class Wrapped(nn.Module):
        """The peft-wrapped LM, the extra trainable modules, and the per-token weighted loss.

        In training the LM head runs only on the positions whose next token is supervised: an
        answer is often a few tokens of a long prompt, and full-vocabulary logits of every
        position cost more than the rest of the step's memory traffic."""

        accepts_loss_kwargs = True  # forward normalises by the Trainer's supervised-token count
        loss_type = "ForCausalLM"  # the Trainer counts supervised tokens on shifted labels

        def __init__(self, lm, extras: dict | None, inject: Callable | None):
            super().__init__()
            self.lm = lm
            self.extras = nn.ModuleDict(extras or {})
            self.inject = inject
            self.config = lm.config  # what Trainer inspects (e.g. for FLOP counts)

        def hidden_states(self, input_ids, attention_mask, **extra):
            """The decoder's last hidden states (the adapter applies inside its layers)."""
            causal = self.lm.get_base_model()
            if self.inject is not None:
                embeds = self.inject(self.extras, causal.get_input_embeddings()(input_ids),
                                     {"input_ids": input_ids, **extra})
                out = causal.base_model(inputs_embeds=embeds, attention_mask=attention_mask)
            else:
                out = causal.base_model(input_ids=input_ids, attention_mask=attention_mask)
            return out.last_hidden_state

        def forward(self, input_ids, attention_mask, labels=None, weights=None, num_items_in_batch=None, **extra):
            hidden = self.hidden_states(input_ids, attention_mask, **extra)
            head = self.lm.get_base_model().get_output_embeddings()
            if labels is None:
                return {"logits": head(hidden)}
            target = labels[:, 1:]
            keep = target != IGNORE
            rows = head(hidden[:, :-1][keep])  # (supervised tokens, vocabulary)
            w = None if weights is None else weights[:, 1:][keep]
            return {"loss": supervised_loss(rows, target[keep], w, num_items_in_batch)}

        def floating_point_ops(self, inputs) -> int:
            # 6 x parameters x tokens, as transformers counts a training step (for MFU reports)
            return 6 * sum(p.numel() for p in self.lm.parameters()) * int(inputs["input_ids"].numel())

    return Wrapped


def supervised_loss(logits, targets, weights=None, num_items=None):
    """(Weighted) cross-entropy summed over supervised tokens (`logits`: one row per token) and
    divided by `num_items`: the supervised tokens of the whole accumulated, all-device batch as
    the Trainer counts them, so accumulation and DDP give the full batch's mean. Without it, the
    mean over these tokens."""
    import torch
    import torch.nn.functional as F

    ce = F.cross_entropy(logits.float(), targets, reduction="none")
    total = (ce if weights is None else ce * weights.to(ce.dtype)).sum()
    denom = num_items if num_items is not None else targets.numel()
    if isinstance(denom, torch.Tensor):
        denom = denom.to(ce.device, ce.dtype)
    return total / denom


def token_loss(logits, labels, weights=None, num_items=None):
    """`supervised_loss` from full logits (batch, positions, vocabulary) and right-aligned labels:
    position t's logits predict label t + 1; labels of -100 are not supervised."""
    target = labels[:, 1:]
    keep = target != IGNORE
    w = None if weights is None else weights[:, 1:][keep]
    return supervised_loss(logits[:, :-1][keep], target[keep], w, num_items)


def load_base(model_dir, settings: TuningSettings):
    """The frozen base LM with a fresh LoRA adapter on its top `layers` blocks, and its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    n_layers = model.config.num_hidden_layers
    layers = list(range(n_layers - settings.layers, n_layers)) if 0 < settings.layers < n_layers else None
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if layers is None:  # frozen embeddings: let gradients reach the first LoRA layer (and no lower)
            model.enable_input_require_grads()
    model.config.use_cache = False
    lora = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                      layers_to_transform=layers, target_modules=list(settings.target_modules),
                      task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    if settings.bf16:
        frozen_linears_in_bf16(peft_model)
    return peft_model, tok


def frozen_linears_in_bf16(model) -> int:
    """Store the frozen base's linear layers in bfloat16; returns how many.

    Under bf16 autocast those layers compute in bfloat16 anyway, from a round-to-nearest cast of
    the float32 weight at every call; stored in bfloat16 they give the same forward, loss and
    trained gradients bit for bit (tested) at half the frozen base's memory (a 7B base: 14 GB
    instead of 28). The step time is unchanged within this CPU's noise (`benchmarks/bua_training.py`).
    The adapter's and the extras' layers stay float32, and so does the output head (tied to the
    input embeddings in many models, which autocast never casts)."""
    import torch
    from torch import nn

    head = model.get_output_embeddings()
    n = 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module is not head and "lora_" not in name:
            module.to(torch.bfloat16)
            n += 1
    return n


def apply_freeze_map(wrapped, train: tuple[str, ...]) -> list[str]:
    """Train exactly the groups named in `train` ('lora' and/or extras' names); everything else is frozen.
    Returns the names of the trainable parameters."""
    known = {"lora", *wrapped.extras.keys()}
    unknown = set(train) - known
    if unknown:
        raise ValueError(f"freeze map names {sorted(unknown)}, which this model does not have; known: {sorted(known)}")
    names = []
    for name, p in wrapped.named_parameters():
        if name.startswith("extras."):
            p.requires_grad = name.split(".")[1] in train
        else:
            p.requires_grad = "lora" in train and "lora_" in name
        if p.requires_grad:
            names.append(name)
    if not names:
        raise ValueError("the freeze map leaves nothing to train")
    return names


def trainable_state(wrapped) -> dict:
    """The weights a run trains or may train: every LoRA and extra parameter (never the frozen base)."""
    return {k: v.detach().cpu().contiguous() for k, v in wrapped.state_dict().items()
            if "lora_" in k or k.startswith("extras.")}


def save_trainable(wrapped, out_dir) -> None:
    from safetensors.torch import save_file

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(wrapped), str(Path(out_dir) / TRAINABLE_FILE))


def load_trainable(wrapped, ckpt_dir) -> None:
    from safetensors.torch import load_file

    state = load_file(str(Path(ckpt_dir) / TRAINABLE_FILE))
    missing = set(trainable_state(wrapped)) - set(state)
    if missing:
        raise ValueError(f"{ckpt_dir}: checkpoint lacks {len(missing)} trainable tensors (e.g. {sorted(missing)[0]})")
    wrapped.load_state_dict(state, strict=False)


class LengthBuckets:
    """A sampler of batches of similar length: the examples sorted by length (ties by position),
    cut into batches of `batch_size`, the batches in a seeded random order (a new order each epoch).

    Random batches pad every example to its batch's longest: on BUA's stage 2 (128 dialogues of
    150-714 tokens, 8 a batch) that is 39 % more tokens than the examples hold (70,576 against
    50,871); buckets pad 2 %. Unlike the Trainer's `group_by_length` (one megabatch sorted longest
    first here), the batches' order stays random, so no length comes first in the schedule.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        import numpy as np

        order = np.argsort(np.asarray(lengths), kind="stable")
        self.batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return sum(map(len, self.batches))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        import numpy as np

        rng = np.random.default_rng([self.seed, self.epoch])
        for b in rng.permutation(len(self.batches)):
            yield from self.batches[b]


def _trainer_class():
    import torch
    from transformers import Trainer

    class TuningTrainer(Trainer):
        """Trainer that saves and restores only the trainable weights (adapter + extras), and
        with `length_buckets` draws batches of similar length (`LengthBuckets`)."""

        def __init__(self, *args, length_buckets: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.length_buckets = length_buckets

        def _save(self, output_dir=None, state_dict=None):
            if self.args.should_save:
                out = output_dir or self.args.output_dir
                save_trainable(self.accelerator.unwrap_model(self.model), out)
                torch.save(self.args, os.path.join(out, "training_args.bin"))

        def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
            load_trainable(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)

        def _load_best_model(self):
            load_trainable(self.accelerator.unwrap_model(self.model), self.state.best_model_checkpoint)

        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if not self.length_buckets:
                return super()._get_train_sampler(train_dataset)
            return LengthBuckets([len(e.input_ids) for e in dataset], self.args.train_batch_size, self.args.seed)

    return TuningTrainer


def split_eval(examples: list[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded held-out share for evaluation (at least one example when share > 0)."""
    import numpy as np

    if share <= 0 or len(examples) < 2:
        return examples, []
    order = np.random.default_rng(seed).permutation(len(examples))
    n_eval = max(1, int(round(share * len(examples))))
    held = set(order[:n_eval].tolist())
    return [e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held]


def run_fingerprint(settings: TuningSettings, train: list[Example], init_from=None) -> str:
    """A short hash of the settings, the starting weights and the training tokens: the name of a
    run's checkpoint folder."""
    h = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True, default=list).encode())
    if init_from:
        h.update((Path(init_from) / TRAINABLE_FILE).read_bytes())
    for e in train:
        h.update(json.dumps([e.input_ids, e.labels, e.weights]).encode())
    return h.hexdigest()[:16]


def training_arguments(settings: TuningSettings, run_dir, device: str, has_eval: bool):
    """The Trainer's arguments from the settings: schedule, accumulation, evaluation, checkpoints, seed."""
    from transformers import TrainingArguments

    every = settings.eval_steps if has_eval else settings.save_steps
    return TrainingArguments(
        output_dir=str(run_dir), per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size, gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate, num_train_epochs=settings.epochs,
        max_steps=settings.max_steps if settings.max_steps > 0 else -1,
        lr_scheduler_type=settings.scheduler, warmup_steps=float(settings.warmup_ratio),
        weight_decay=settings.weight_decay, seed=settings.seed, data_seed=settings.seed,
        bf16=settings.bf16, use_cpu=device == "cpu", logging_steps=1, logging_first_step=True,
        eval_strategy="steps" if has_eval else "no", eval_steps=every if has_eval else None,
        save_strategy="steps", save_steps=every, save_total_limit=2 if not has_eval else None,
        load_best_model_at_end=has_eval and settings.patience > 0,
        metric_for_best_model="eval_loss" if has_eval else None, greater_is_better=False,
        report_to=[], disable_tqdm=False, remove_unused_columns=False, dataloader_num_workers=0,
        ddp_backend="gloo" if device == "cpu" and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        average_tokens_across_devices=True, include_num_input_tokens_seen="non_padding",
    )


def tune(model_dir, train: list[Example], out_dir, settings: TuningSettings, *, run_dir=None,
         eval_examples: list[Example] | None = None, extras: dict | None = None, inject: Callable | None = None,
         device: str = "auto", threads: int | None = None, desc: str = "tune", keep_checkpoints: bool = False,
         callbacks: list | None = None, init_from=None) -> dict:
    """Train the adapter (and extras) on tokenised examples; save them to `out_dir` with a report.

    `init_from`: a previous run's output folder whose adapter (and extras) this run continues
    (BehaviorLM's B-tuning continues the A-tuned adapter); it must have the same LoRA shape.

    `run_dir` holds the Trainer's checkpoints (default `<out_dir>.run`): if it has one, training
    resumes from the last. The adapter goes to `out_dir` in peft's format (loadable by
    `PeftModel.from_pretrained`), the extras and adapter together to `trainable.safetensors`."""
    import time

    import torch
    from transformers import EarlyStoppingCallback, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from behaviorflow.lm.local import pick_device

    if threads:
        torch.set_num_threads(int(threads))
    device = pick_device(device)
    if settings.bf16 and not bf16_supported(device):
        log.warning("%s: this %s has no native bfloat16; training in float32 instead", desc, device)
        settings = dataclasses.replace(settings, bf16=False)
    set_seed(settings.seed)
    if not train:
        raise ValueError("no training example: every prompt fills max_length, or the data are empty")
    lm, _ = load_base(model_dir, settings)
    wrapped = _wrapped_class()(lm, extras, inject)
    if init_from:
        load_trainable(wrapped, init_from)
    trainable = apply_freeze_map(wrapped, settings.train)
    out = Path(out_dir)
    # checkpoints of this exact run (settings, start and data): a changed config never resumes a stale run
    run_dir = Path(run_dir) if run_dir else \
        out.with_name(out.name + ".run") / run_fingerprint(settings, train, init_from)
    args = training_arguments(settings, run_dir, device, bool(eval_examples))
    pad_id = lm.config.pad_token_id if lm.config.pad_token_id is not None else 0
    callbacks = [*(callbacks or []), *([EarlyStoppingCallback(settings.patience)]
                                        if eval_examples and settings.patience > 0 else [])]
    trainer = _trainer_class()(model=wrapped, args=args, train_dataset=train, eval_dataset=eval_examples or None,
                               data_collator=collate(pad_id), callbacks=callbacks,
                               length_buckets=settings.length_buckets)
    last = get_last_checkpoint(str(run_dir)) if run_dir.is_dir() else None
    if last:
        log.info("%s: resuming from %s", desc, last)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    if any(not math.isfinite(x) for x in losses):
        raise FloatingPointError(f"{desc}: non-finite training loss; lower the learning rate")
    evals = [round(h["eval_loss"], 4) for h in trainer.state.log_history if "eval_loss" in h]
    report = {
        "examples": len(train), "eval_examples": len(eval_examples or []), "steps": trainer.state.global_step,
        "losses": losses, "eval_losses": evals, "best_checkpoint": trainer.state.best_model_checkpoint and
        Path(trainer.state.best_model_checkpoint).name, "resumed_from": last and Path(last).name,
        "tokens": int(trainer.state.num_input_tokens_seen), "seconds": round(seconds, 1),
        "train_runtime_s": round(result.metrics.get("train_runtime", seconds), 1), "device": device,
        "processes": trainer.args.world_size, "trainable": len(trainable),
        "init_from": str(init_from) if init_from else None,
        "trainable_parameters": int(sum(p.numel() for p in wrapped.parameters() if p.requires_grad)),
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()},
    }
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        wrapped.lm.save_pretrained(out)
        save_trainable(wrapped, out)
        (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
        if not keep_checkpoints:
            shutil.rmtree(run_dir, ignore_errors=True)  # resumable state is for interrupted runs only
    log.info("%s: %d examples, %d steps, loss %s -> %s, %d tokens in %.0f s", desc, len(train), report["steps"],
             losses[0] if losses else "n/a", losses[-1] if losses else "n/a", report["tokens"], seconds)
    return report
