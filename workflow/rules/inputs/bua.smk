# Input functions and settings of the BUA rules (bua.smk) and tables 7 and 9.

BUA_SEEDS = BUA["seeds"]
BUA_SETTINGS = {
    k: BUA[k]
    for k in (
        "window",
        "positions",
        "text_events",
        "placeholder",
        "understanding_tokens",
        "batch_size",
        "generation",
        "stage1",
        "stage2",
        "stage3",
        "tuning",
    )
}
BUA_ROUNDS = ["key_behaviours", "patterns", "summary"]
# The settings bua_answers takes: which samples a seed's stages draw, and how the answers are written
# (stage settings beyond the draws never rewrite them).
BUA_ANSWER_SETTINGS = {
    "window": BUA["window"],
    "positions": BUA["positions"],
    "answers": BUA["answers"],
    "stage1": {"examples": BUA["stage1"]["examples"]},
    "stage2": {
        k: BUA["stage2"][k]
        for k in ("examples", "generation_examples")
        if k in BUA["stage2"]
    },
    "stage3": {"pool": BUA["stage3"]["pool"]},
}
# Threads of the encoder states and the training stages (null: resources.threads). On 2 cores, 1
# thread a job lets a stage run beside a decoding job instead of waiting for both cores; a 2-thread
# job among 1-thread ones waits until none is ready to run (config/README.md, "bua").
BUA_TRAINING_THREADS = BUA["training_threads"] or config["resources"]["threads"]
# Scheduling order among ready BUA jobs: the encoder states, stages and reflection pools first
# (they unlock the rest; the item-embedding arm's states, left at priority 0 and 2 threads, waited
# until every other arm's rows were written, and its whole chain ran last), then the long
# prediction jobs before the short one-day generations, so the last jobs to start are short.
BUA_PRIORITY = {"train": 2, "predict": 1, "generate": 0}
# What each stage-2 arm changes (full: the paper's curriculum; no_stage3 predicts with full's
# stage-2 model): the embedding the encoder gives, whether stage 1 ran first, stage 2's
# understanding rounds, the round-balanced loss, and whether stage 3 follows.
BUA_ARMS = {
    "full": {
        "embedding": "sequence",
        "stage1": True,
        "rounds": BUA_ROUNDS,
        "balance": True,
    },
    "no_stage1": {
        "embedding": "sequence",
        "stage1": False,
        "rounds": BUA_ROUNDS,
        "balance": True,
    },
    "no_stage2": {
        "embedding": "sequence",
        "stage1": True,
        "rounds": [],
        "balance": True,
    },
    "no_balance": {
        "embedding": "sequence",
        "stage1": True,
        "rounds": BUA_ROUNDS,
        "balance": False,
    },
    "item_emb": {
        "embedding": "item",
        "stage1": True,
        "rounds": BUA_ROUNDS,
        "balance": True,
    },
}
# Each BUA row: the adapter it predicts with (stage 3 refines stage 2's summaries, so the rows
# without stage-2 understanding rounds, and w/o stage 3, predict with the stage-2 model).
BUA_METHODS = {
    "bua": "stage3_full",
    "bua_no_stage1": "stage3_no_stage1",
    "bua_no_stage2": "stage2_no_stage2",
    "bua_no_stage3": "stage2_full",
    "bua_no_balance": "stage3_no_balance",
    "bua_item_emb": "stage3_item_emb",
}
TABLE7_METHODS = ["bua", "llm_full_ft", "behaviorlm"]
# which test users' days table 8's generators write (bua/days.py: day_keys)
BUA_DAY_KEYS = {
    "window": BUA["window"],
    "users": BUA["generation"]["users"],
    "seed": BUA["pool_seed"],
}
TABLE8_GENERATORS = ["markov", "behaviorgen"]
TABLE8_ROWS = ["bua", *TABLE8_GENERATORS]
TABLE9_METHODS = ["bua"] + [f"bua_{a}" for a in BUA["ablations"]]


def _arm(method):
    return BUA_METHODS[method].split("_", 1)[1]


def bua_variant(arm):
    """What the stage rules and the predictor need of an arm (JSON-able params)."""
    spec = BUA_ARMS[arm]
    return {"rounds": spec["rounds"], "balance": spec["balance"]}


def get_bua_states(wildcards):
    return f"results/{wildcards.dataset}/bua/states_{BUA_ARMS[wildcards.arm]['embedding']}.npz"


def get_bua_encoder(wildcards):
    if BUA["encoder_seed"] not in SEEDS:
        raise WorkflowError(
            f"bua.encoder_seed {BUA['encoder_seed']} is not a predictors.seeds value {SEEDS}"
        )
    return f"models/predictors/{wildcards.dataset}/sasrec/real/seed{BUA['encoder_seed']}.pt"


def get_bua_answers(wildcards):
    """The seed's LLM-written curriculum answers (bua.answers.source: openai); none: the rules'."""
    if BUA["answers"]["source"] != "openai":
        return {}
    return {
        "answers": f"results/{wildcards.dataset}/bua/curriculum_answers_seed{wildcards.seed}.parquet"
    }


def get_bua_stage2_inputs(wildcards):
    inputs = {
        **get_bua_answers(wildcards),
        "model": get_behaviorlm_model(wildcards),
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "states": get_bua_states(wildcards),
    }
    spec = BUA_ARMS[wildcards.arm]
    if spec["stage1"]:
        inputs["init"] = (
            f"models/bua/{wildcards.dataset}/stage1_{spec['embedding']}/seed{wildcards.seed}"
        )
    return inputs


def get_bua_predict_inputs(wildcards):
    adapter = BUA_METHODS[wildcards.method]
    return {
        "model": get_behaviorlm_model(wildcards),
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "states": f"results/{wildcards.dataset}/bua/states_{BUA_ARMS[_arm(wildcards.method)]['embedding']}.npz",
        "adapter": f"models/bua/{wildcards.dataset}/{adapter}/seed{wildcards.seed}",
    }


def get_day_generation_inputs(wildcards):
    """Split and profiles; for BehaviorGen on a local model the main chain's model and adapter."""
    return get_generation_inputs(wildcards, wildcards.generator)


def get_day_downstream_inputs(wildcards):
    """The pretrained SASRec of the same seed and every table-8 row's days."""
    if int(wildcards.seed) not in SEEDS:
        raise WorkflowError(
            f"table 8's downstream check fine-tunes SASRec seed {wildcards.seed} (a bua.seeds value): "
            f"add it to predictors.seeds {SEEDS}"
        )
    d = wildcards.dataset
    return {
        "split": f"data/processed/{d}/split.parquet",
        "model": f"models/predictors/{d}/sasrec/real/seed{wildcards.seed}.pt",
        **{
            f"days_{g}": f"results/{d}/bua/days/{g}_seed{wildcards.seed}.parquet"
            for g in TABLE8_ROWS
        },
    }


def get_bua_predict_variant(wildcards):
    return bua_variant(_arm(wildcards.method))


def bua_parts(methods):
    """Every BUA method's rows on every BUA dataset."""
    return expand(
        "results/{dataset}/parts/llm/{method}_seed{seed}.csv",
        dataset=BUA_DATASETS,
        method=methods,
        seed=BUA_SEEDS,
    )


def day_parts(models):
    """Every listed generator's (or BUA row's) one-day metrics on every BUA dataset."""
    return expand(
        "results/{dataset}/parts/days/{model}_seed{seed}.csv",
        dataset=BUA_DATASETS,
        model=models,
        seed=BUA_SEEDS,
    )


def get_bua_table_inputs(wildcards, table=None):
    table = table or wildcards.table
    missing = sorted(set(BUA_DATASETS) - set(BLM_DATASETS))
    if not BUA_DATASETS or missing:
        raise WorkflowError(
            f"results/{table}.csv needs BUA datasets that are BehaviorLM datasets too (table 7 sets BUA "
            f"beside BehaviorLM); set bua.datasets and behaviorlm.datasets (missing: {missing})"
        )
    if table == "table7":
        return {
            "parts": bua_parts(["bua"])
            + [
                p
                for p in _llm_parts(["llm_full_ft", "behaviorlm"])
                if p.split("/")[1] in BUA_DATASETS
            ]
            + expand(
                "results/{dataset}/parts/llm/sequential.csv", dataset=BUA_DATASETS
            ),
        }
    if table == "table8":
        return {"parts": day_parts([*TABLE8_ROWS, "downstream"])}
    return {"parts": bua_parts(TABLE9_METHODS), "days": day_parts(TABLE9_METHODS)}
