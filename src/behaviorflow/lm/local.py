"""Local causal LMs for inference: the transformers backend (batched, seeded, optionally with a LoRA
adapter and grammar-constrained), a model's identity for the call cache, and device choice."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from pathlib import Path

from behaviorflow.lm.backends import BackendError, Completion
from behaviorflow.provenance import sha256_file

log = logging.getLogger(__name__)


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


# SDPA over only the key/value slots some row can attend to (see `register_prefix_attention`)
PREFIX_ATTENTION = "sdpa_used_prefix"


def _causal_prefill_per_row(module, query, key, value, mask, scaling):
    """A left-padded prefill as one causal SDPA per row over its own tokens, or None when `mask`
    is not exactly causal after each row's padding.

    Under a padding mask SDPA computes every (query, key) pair of the padded square; per row and
    causal it computes the lower triangle of the row's own length: a third of the work for prompts
    of 1,200-1,960 tokens. Outputs at padding positions stay zero (no real token attends to them).
    """
    import torch

    batch, heads, length, dim = query.shape
    rows = mask[:, 0]
    starts = rows[:, -1].int().argmax(-1).tolist()  # each row's first real token
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()
    cols = torch.arange(length, device=mask.device)
    if any(not torch.equal(rows[r, s:], causal[s:] & (cols >= s)) for r, s in enumerate(starts)):
        return None
    groups = heads // key.shape[1]
    out = query.new_zeros(batch, length, heads, dim)
    for r, s in enumerate(starts):
        k = key[r:r + 1, :, s:].repeat_interleave(groups, 1)
        v = value[r:r + 1, :, s:].repeat_interleave(groups, 1)
        out[r, s:] = torch.nn.functional.scaled_dot_product_attention(
            query[r:r + 1, :, s:], k, v, is_causal=True, scale=scaling)[0].transpose(0, 1)
    return out


def register_prefix_attention() -> str:
    """Register `PREFIX_ATTENTION` with transformers: SDPA on the cache's used prefix.

    A static cache holds a slot for every step still to come, and plain SDPA reads all of them at
    every step only to mask them out: decoding a week (a 1,200-token prompt and 1,280 new tokens)
    reads twice the keys and values it needs, and the left-padded prefill attends over the whole
    cache. Here attention is cut at the last slot any row's mask allows; the masked slots it drops
    carry zero weight, so the result is the same attention (up to summation order).
    """
    import torch
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(module, query, key, value, attention_mask, **kwargs):
        if attention_mask is not None and attention_mask.dtype == torch.bool and key.shape[2] > query.shape[2]:
            used = int(attention_mask.reshape(-1, attention_mask.shape[-1]).any(0).nonzero().max()) + 1
            key, value, attention_mask = key[:, :, :used], value[:, :, :used], attention_mask[..., :used]
        if (attention_mask is not None and attention_mask.dtype == torch.bool and query.shape[2] > 1
                and key.shape[2] == query.shape[2] and not kwargs.get("dropout")):
            out = _causal_prefill_per_row(module, query, key, value, attention_mask, kwargs.get("scaling"))
            if out is not None:
                return out, None
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(PREFIX_ATTENTION, attention)
    AttentionMaskInterface.register(PREFIX_ATTENTION, sdpa_mask)
    return PREFIX_ATTENTION


def contiguous_lm_head(model):
    """Give `model`'s LM head a contiguous input; returns the model.

    Generation's prefill applies the head to each row's last position only (`hidden[:, -1:, :]`, a
    strided slice). torch's linear folds a 3-D input into one matrix product only when its leading
    dimensions are contiguous or the weight requires grad; for a frozen head (a merged adapter's)
    and the slice it runs a bmm that copies the head's weight once per row: 16 rows through
    SmolLM2's 49,152-token head took 0.9 s instead of 6 ms on this CPU, once per generate call
    (benchmarks/bua_inference.py).
    """
    model.get_output_embeddings().register_forward_pre_hook(lambda _head, args: (args[0].contiguous(), *args[1:]))
    return model


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
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                     attn_implementation=register_prefix_attention())
        if adapter_dir:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        # merged in float32, then cast: bfloat16 halves the weight traffic that bounds decoding
        self.model = contiguous_lm_head(model.to(self.device, dtype=getattr(torch, dtype)).eval())
        # a preallocated key/value cache: the default one grows by concatenation, which copies the
        # whole cache at every step (2.8x slower decoding of a week here: 0.36 vs 0.13 s per step)
        self._identity = {**model_identity(model_dir, adapter_dir), "dtype": dtype, "kv_cache": "static",
                          "attention": PREFIX_ATTENTION}

    def identity(self) -> dict:
        return self._identity

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]

    def complete_batch(self, requests):
        """One generate() per distinct sampling setting (grammars aside); the batch's RNG is seeded from its seeds."""
        import torch

        out: list = [None] * len(requests)
        # calls that differ only in their grammar (e.g. each call's own per-day caps) share a batch:
        # the logits processor keeps one grammar per row
        groups: dict[tuple, list[int]] = {}
        for i, (_, sampling, _) in enumerate(requests):
            groups.setdefault((replace(sampling, grammar=None), sampling.grammar is None), []).append(i)
        for (sampling, _), idx in groups.items():
            grammars = [requests[i][1].grammar for i in idx]
            try:
                prompts = [self.prompt_ids(requests[i][0]) for i in idx]
                batch = self.tokenizer.pad({"input_ids": prompts}, return_tensors="pt").to(self.device)
                seed = int(hashlib.sha256(",".join(str(requests[i][2]) for i in idx).encode()).hexdigest()[:8], 16)
                torch.manual_seed(seed)
                processors = None
                if grammars[0] is not None:
                    from transformers import LogitsProcessorList

                    from behaviorflow.lm.grammar import EventLogitsProcessor

                    processors = LogitsProcessorList([EventLogitsProcessor(
                        grammars, self.tokenizer, batch["input_ids"].shape[1], sampling.max_new_tokens)])
                t0 = time.perf_counter()
                with torch.no_grad():
                    gen = self.model.generate(**batch, do_sample=sampling.temperature > 0,
                                              temperature=sampling.temperature or None,
                                              top_p=sampling.top_p, max_new_tokens=sampling.max_new_tokens,
                                              pad_token_id=self.tokenizer.pad_token_id,
                                              logits_processor=processors, cache_implementation="static")
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
