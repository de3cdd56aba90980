"""Endpoint throughput of the openai backend: calls/s at several in-flight limits against a loopback
OpenAI-compatible server that answers every request after a fixed delay.

    python benchmarks/openai_throughput.py [--delay 0.2] [--limits 1 8 32] [--calls 320]

The server is the tests' `FakeOpenAI` (a real HTTP server on 127.0.0.1, one thread per request) in
a process of its own, as an endpoint is; the client the real `OpenAIBackend` (the official openai
client) behind the real `CachedLLM` with a fresh cache per limit, so every call is a miss, goes
over HTTP and is written to the cache. The ideal rate of a limit L is L / delay; the ratio is
measured / ideal. Limit 1 runs a tenth of the calls (it is the slow one by design).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from behaviorflow.lm.backends import CachedLLM, LLMCache, OpenAIBackend, Sampling

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.2, help="the server's answer delay (s)")
    ap.add_argument("--limits", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--calls", type=int, default=320, help="calls per limit (limit 1: a tenth)")
    args = ap.parse_args()

    prompt = ("Generate this user's events for the week from Monday 2024-03-04 to Sunday 2024-03-10.\n"
              "Zones: z1, z2. Behaviours: messaging, music.")
    sampling = Sampling(temperature=0.8, top_p=0.95, max_new_tokens=1024)
    print(f"loopback server answering after {args.delay * 1000:.0f} ms; {args.calls} calls per limit")
    print(f"{'in flight':>9} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'ideal':>7} {'ratio':>6}")
    server = subprocess.Popen([sys.executable, str(ROOT / "tests/fake_openai.py"), str(args.delay)],
                              stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        for limit in args.limits:
            n = max(limit, args.calls // 10) if limit == 1 else args.calls
            requests = [([{"role": "user", "content": f"{prompt} #{limit}-{i}"}], sampling, i) for i in range(n)]
            with tempfile.TemporaryDirectory() as cache:
                llm = CachedLLM(OpenAIBackend("fake-model", base_url, None, max_retries=0, timeout_s=30,
                                              max_in_flight=limit), LLMCache(cache))
                t0 = time.perf_counter()
                results = llm.complete_batch(requests)
                seconds = time.perf_counter() - t0
                cached = sum(1 for _ in Path(cache).rglob("*.json"))
            failed = sum(r.completion is None for r in results)
            if failed or cached != n:
                raise SystemExit(f"limit {limit}: {failed} failed calls, {cached} of {n} cached")
            rate, ideal = n / seconds, limit / args.delay
            print(f"{limit:>9} {n:>6} {seconds:>8.2f} {rate:>8.1f} {ideal:>7.1f} {rate / ideal:>6.2f}")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
