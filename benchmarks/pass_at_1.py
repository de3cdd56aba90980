"""Pass@1 of the embedded generator with and without its LoRA adapter and grammar, on the same
users, prompts and seeds as the default run.

    python benchmarks/pass_at_1.py                         # raw model, no grammar
    python benchmarks/pass_at_1.py --adapter --grammar     # the default generator

Needs the default run's data (`snakemake --cores all`): the split, profiles, the converted model
and, for `--adapter`, `models/adapters/simulated/behaviorgen`. Uses the default config's
generation settings (users, seeds, sampling, batch size) with one attempt per call, and its own
cache folder, so nothing of the workflow's cache is reused or touched. Prints Pass@1 and the
first error of each invalid response, grouped.
"""

from __future__ import annotations

import argparse
import collections
import re
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", action="store_true", help="use the tuned LoRA adapter")
    ap.add_argument("--grammar", action="store_true", help="grammar-constrained decoding")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from behaviorflow.behaviorgen.generate import (
        LLMGenerationSettings,
        generate_with_llm,
        max_events_per_day,
        user_contexts,
        vocabularies,
    )
    from behaviorflow.lm.backends import CachedLLM, LLMCache, Sampling
    from behaviorflow.lm.local import TransformersBackend

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    gen, bg = cfg["generation"], cfg["generation"]["behaviorgen"]
    processed = ROOT / "data/processed/simulated"
    split = pd.read_parquet(processed / "split.parquet")
    profiles = pd.read_parquet(processed / "profiles.parquet")
    population, personal = user_contexts(split, profiles, gen["population_users"], gen["seed"],
                                         tuple(gen["personal_splits"]))
    zones, behaviors = vocabularies(split, cfg["anonymization"]["top_zones"])
    adapter = ROOT / "models/adapters/simulated/behaviorgen" if args.adapter else None
    backend = TransformersBackend(ROOT / "models/smollm2-135m-instruct", adapter, device="cpu", threads=args.threads,
                                  dtype=bg["transformers"]["dtype"])
    settings = LLMGenerationSettings(variant=bg["variant"], weeks=gen["weeks"], sample_days=bg["sample_days"],
                                     max_attempts=1, batch_size=bg["batch_size"], seed=gen["seed"],
                                     sampling=Sampling(**bg["sampling"]), constrained=args.grammar,
                                     max_per_day=max_events_per_day(split))
    logs = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        llm = CachedLLM(backend, LLMCache(cache))
        for name, ctxs in (("population", population), ("personal", personal)):
            logs.append(generate_with_llm(ctxs, llm, settings, zones, behaviors, cfg["slot_minutes"], name)[1])
    log = pd.concat(logs, ignore_index=True)
    label = f"{'LoRA-tuned' if args.adapter else 'raw'} SmolLM2-135M, grammar {'on' if args.grammar else 'off'}"
    print(f"\n{label}: Pass@1 = {log['valid'].mean():.1%} ({int(log['valid'].sum())} of {len(log)} calls; "
          f"{len(population)} population + {len(personal)} personal users), {time.perf_counter() - t0:.0f} s")
    kinds = collections.Counter(re.sub(r"line \d+: ", "", str(e)).split("'")[0].strip()
                                for e in log.loc[~log["valid"], "error"])
    for kind, n in kinds.most_common():
        print(f"  {n:3d} x {kind}")


if __name__ == "__main__":
    main()
