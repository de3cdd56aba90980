"""LLM backends behind one interface, and the content-addressed cache every call goes through.

Backends return a `Completion` (finish_reason "length" when truncated) or a `BackendError`; `CachedLLM` looks each request up in
`LLMCache` first, calls the backend only for misses, stores each successful completion atomically
the moment it arrives (so a run killed mid-batch repeats no completed call) and counts backend
calls, cache hits and errors. Failures (HTTP errors, timeouts, truncated or malformed completions)
are never cached.

The openai backend keeps up to `max_in_flight` requests open at once (a thread pool over the
official client, which is thread-safe and does its own retries, honouring Retry-After); local
backends answer a batch at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from behaviorflow.config import from_schema
from behaviorflow.lm.grammar import EventGrammar

CACHE_VERSION = 1


@dataclass(frozen=True)
@from_schema("properties/generation/properties/behaviorgen/properties/sampling", local=("grammar",))
class Sampling:
    """Sampling parameters of one call (part of the cache key); defaults: the config schema's."""

    temperature: float
    top_p: float
    max_new_tokens: int
    # local models only: constrain decoding to valid event lines (part of the cache key)
    grammar: EventGrammar | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    model: str
    finish_reason: str = "stop"


class BackendError(RuntimeError):
    """A call that produced no usable completion (after the backend's own retries)."""


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class LLMCache:
    """One JSON file per call under `root/<2 hex>/<sha256>.json`, written atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def key(identity: dict, messages: list[dict], sampling: Sampling, seed: int) -> str:
        payload = {"identity": identity, "messages": messages, "sampling": asdict(sampling), "seed": int(seed),
                   "cache_version": CACHE_VERSION}
        if sampling.grammar is not None:  # the same grammar settings under changed grammar code decode otherwise
            payload["grammar_code"] = grammar_code()
        return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            return json.loads(self.path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def put(self, key: str, record: dict) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # unique temp name: two jobs writing the same key never clobber each other's temp file
        tmp = path.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(canonical_json(record), encoding="utf-8")
        os.replace(tmp, path)


@functools.cache
def grammar_code() -> str:
    """The checksum of the grammar's code (`behaviorflow.lm.grammar`): part of a constrained call's key."""
    return hashlib.sha256((Path(__file__).parent / "grammar.py").read_bytes()).hexdigest()


@dataclass
class CallResult:
    key: str
    cache_hit: bool
    completion: Completion | None
    error: str | None


class CachedLLM:
    """A backend seen through the cache; counts what really reached the backend."""

    def __init__(self, backend, cache: LLMCache):
        self.backend = backend
        self.cache = cache
        self.backend_calls = 0
        self.cache_hits = 0
        self.errors = 0

    def cached(self, messages: list[dict], sampling: Sampling, seed: int) -> CallResult | None:
        """The cached answer to one request (counted as a hit), or None; never calls the backend."""
        key = self.cache.key(self.backend.identity(), messages, sampling, seed)
        hit = self.cache.get(key)
        if hit is None:
            return None
        self.cache_hits += 1
        return CallResult(key, True, Completion(**hit["completion"]), None)

    def complete_batch(self, requests: list[tuple[list[dict], Sampling, int]],
                       on_result: Callable[[int, CallResult], None] | None = None) -> list[CallResult]:
        """Results in request order; `on_result(i, result)` as each one is known (hits first)."""
        identity = self.backend.identity()
        results: list[CallResult | None] = [None] * len(requests)
        misses = []
        for i, (messages, sampling, seed) in enumerate(requests):
            key = self.cache.key(identity, messages, sampling, seed)
            hit = self.cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                results[i] = CallResult(key, True, Completion(**hit["completion"]), None)
                if on_result:
                    on_result(i, results[i])
            else:
                misses.append((i, key))

        def settle(m: int, outcome) -> None:  # one backend answer: cache it at once if usable
            i, key = misses[m]
            if isinstance(outcome, Completion) and outcome.finish_reason == "length":
                # a truncated completion is a failure: never cached, retried by the caller
                results[i] = CallResult(key, False, None, "truncated completion: finish_reason=length "
                                        f"after {outcome.completion_tokens} tokens")
            elif isinstance(outcome, Completion):
                _, sampling, seed = requests[i]
                self.cache.put(key, {"key": key, "identity": identity, "seed": seed,
                                     "sampling": asdict(sampling), "completion": asdict(outcome),
                                     "created_unix": int(time.time())})
                results[i] = CallResult(key, False, outcome, None)
            else:
                results[i] = CallResult(key, False, None, str(outcome))
            self.errors += results[i].completion is None
            if on_result:
                on_result(i, results[i])

        if misses:
            self.backend_calls += len(misses)
            batch = [requests[i] for i, _ in misses]
            if getattr(self.backend, "streams_results", False):
                self.backend.complete_batch(batch, on_done=settle)
            else:
                for m, outcome in enumerate(self.backend.complete_batch(batch)):
                    settle(m, outcome)
        return results


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server) via the official client.

    The key is read from the environment variable `key_env` (None: the endpoint needs no key);
    retries with back-off (429 honouring retry-after, 5xx, timeouts) are the client's own.
    """

    name = "openai"

    streams_results = True  # complete_batch reports each answer as it arrives (CachedLLM caches it then)

    def __init__(self, model: str, base_url: str | None = None, key_env: str | None = "OPENAI_API_KEY",
                 max_retries: int = 2, timeout_s: float = 60.0, max_in_flight: int = 8):
        import openai

        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self.max_in_flight = int(max_in_flight)
        if key_env:
            key = os.environ.get(key_env)
            if not key:
                raise BackendError(f"environment variable {key_env} is not set; export the API key "
                                   "(or set generation.openai.key_env: null for an endpoint without keys)")
        else:
            key = "no-key-required"
        self.model = model
        self.base_url = base_url
        self._errors = openai.OpenAIError
        self.client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=max_retries, timeout=timeout_s)

    def identity(self) -> dict:
        return {"backend": self.name, "model": self.model, "base_url": self.base_url or "https://api.openai.com/v1"}

    def complete_batch(self, requests, on_done: Callable[[int, object], None] | None = None):
        """One outcome per request, in order; at most `max_in_flight` requests open at a time.
        `on_done(i, outcome)` runs in the calling thread as each request finishes."""
        outcomes: list = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_in_flight, len(requests))),
                                thread_name_prefix="openai") as pool:
            futures = {pool.submit(self._complete, *r): i for i, r in enumerate(requests)}
            for fut in as_completed(futures):
                i = futures[fut]
                outcomes[i] = fut.result()  # _complete returns errors as values, it never raises them
                if on_done:
                    on_done(i, outcomes[i])
        return outcomes

    def _complete(self, messages, sampling: Sampling, seed: int):
        if sampling.grammar is not None:
            return BackendError("grammar-constrained decoding needs a local model (backend: transformers); "
                                "set generation.behaviorgen.constrained: false for the openai backend")
        t0 = time.perf_counter()
        try:
            resp = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=sampling.temperature, top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens, seed=int(seed))
        except (self._errors, ValueError) as exc:  # ValueError: a body that is not JSON
            return BackendError(f"{type(exc).__name__}: {_short(exc)}")
        latency = time.perf_counter() - t0
        try:
            choice = resp.choices[0]
            text = choice.message.content
            usage = resp.usage
        except (AttributeError, IndexError, TypeError) as exc:
            return BackendError(f"malformed completion: {type(exc).__name__}")
        if not isinstance(text, str):
            return BackendError("malformed completion: no message content")
        return Completion(text=text, prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                          completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0), latency_s=latency,
                          model=str(getattr(resp, "model", self.model)), finish_reason=str(choice.finish_reason))


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


def cached_llm(backend: dict, cache_dir: str, model: str | None = None, adapter: str | None = None,
               threads: int | None = None) -> CachedLLM:
    """The configured backend (`backend`: the generator's settings with `backend`, `openai`,
    `transformers`) seen through the call cache in `cache_dir`."""
    if backend["backend"] == "openai":
        api = backend["openai"]
        impl = OpenAIBackend(api["model"], api["base_url"], api["key_env"], api["max_retries"], api["timeout_s"],
                             api.get("max_in_flight", 8))
    else:
        from behaviorflow.lm.local import TransformersBackend

        tf = backend["transformers"]
        impl = TransformersBackend(model, adapter, tf["device"], threads=threads, dtype=tf.get("dtype", "float32"))
    return CachedLLM(impl, LLMCache(cache_dir))
