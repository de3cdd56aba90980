"""Pass@1 of the embedded generator with and without its LoRA adapter and grammar, on the same
users, prompts and seeds as the default run.

    python benchmarks/pass_at_1.py                         # raw model, no grammar
    python benchmarks/pass_at_1.py --adapter --grammar     # the default generator
    python benchmarks/pass_at_1.py --adapter-dir OTHER/models/adapters/simulated/behaviorgen --grammar --parts personal
                                                           # another adapter (e.g. an older commit's) on the same prompts

Needs the default run's data (`snakemake --cores all`): the split, profiles, the converted model
and, for `--adapter`, `models/adapters/simulated/behaviorgen`. Uses the default config's
generation settings (users, seeds, sampling, batch size) with one attempt per call, and its own
cache folder, so nothing of the workflow's cache is reused or touched. Prints Pass@1 and the
first error of each invalid response, grouped, and the fidelity of the personal weeks against the
same users' held-out query events (behaviour JSD pooled and per user, time-of-day KS_P per user).
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
    ap.add_argument("--adapter-dir", type=Path, help="use this LoRA adapter directory instead")
    ap.add_argument("--grammar", action="store_true", help="grammar-constrained decoding")
    ap.add_argument("--parts", nargs="+", choices=["population", "personal"], default=["population", "personal"])
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
    from behaviorflow.validation.fidelity import fidelity_rows

    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    gen, bg = cfg["generation"], cfg["generation"]["behaviorgen"]
    processed = ROOT / "data/processed/simulated"
    split = pd.read_parquet(processed / "split.parquet")
    profiles = pd.read_parquet(processed / "profiles.parquet")
    population, personal = user_contexts(split, profiles, gen["population_users"], gen["seed"],
                                         tuple(gen["personal_splits"]))
    zones, behaviors = vocabularies(split, cfg["anonymization"]["top_zones"])
    adapter = args.adapter_dir or (ROOT / "models/adapters/simulated/behaviorgen" if args.adapter else None)
    backend = TransformersBackend(ROOT / "models/smollm2-135m-instruct", adapter, device="cpu", threads=args.threads,
                                  dtype=bg["transformers"]["dtype"])
    settings = LLMGenerationSettings(variant=bg["variant"], weeks=gen["weeks"], sample_days=bg["sample_days"],
                                     max_attempts=1, batch_size=bg["batch_size"], seed=gen["seed"],
                                     sampling=Sampling(**bg["sampling"]), constrained=args.grammar,
                                     max_per_day=max_events_per_day(split))
    logs, events = [], {}
    t0 = time.perf_counter()
    parts = {"population": population, "personal": personal}
    with tempfile.TemporaryDirectory() as cache:
        llm = CachedLLM(backend, LLMCache(cache))
        for name in args.parts:
            events[name], part_log = generate_with_llm(parts[name], llm, settings, zones, behaviors,
                                                       cfg["slot_minutes"], name)
            logs.append(part_log)
    log = pd.concat(logs, ignore_index=True)
    population, personal = (parts[p] if p in args.parts else [] for p in ("population", "personal"))
    label = (f"{adapter or 'raw'} on SmolLM2-135M, grammar {'on' if args.grammar else 'off'}")
    print(f"\n{label}: Pass@1 = {log['valid'].mean():.1%} ({int(log['valid'].sum())} of {len(log)} calls; "
          f"{len(population)} population + {len(personal)} personal users), {time.perf_counter() - t0:.0f} s")
    kinds = collections.Counter(re.sub(r"line \d+: ", "", str(e)).split("'")[0].strip()
                                for e in log.loc[~log["valid"], "error"])
    for kind, n in kinds.most_common():
        print(f"  {n:3d} x {kind}")
    if len(events.get("personal", [])):
        f = fidelity_rows(split, {"personal": events["personal"]})
        pick = {(r.level, r.metric): r.value for r in f.itertuples()}
        print(f"personal weeks vs held-out query events: behaviour JSD {pick['population', 'jsd_behavior']:.3f} pooled, "
              f"{pick['user', 'jsd_behavior']:.3f} user mean; time-of-day KS_P {pick['user', 'ks_p_time']:.2g} user mean")


if __name__ == "__main__":
    main()
