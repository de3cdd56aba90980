# Input functions and settings of the BehaviorLM rules (behaviorlm.smk) and tables 5-6.

F = BEHAVIORLM["select"]["per_label"]
# Each LLM row and the adapter it scores with (None: the base model, zero-shot).
LLM_METHODS = {
    "llm_zero_shot": None,
    "llm_full_ft": "atune_full",
    "behaviorlm_anchor_only": "atune_anchor",
    "behaviorlm": f"btune_difficulty_anchor_F{F}",
    "behaviorlm_no_aux": f"btune_difficulty_no_aux_F{F}",
    "behaviorlm_random_select": f"btune_random_anchor_F{F}",
    "behaviorlm_tail_first": "tail_first",
}
# the few-shot curve: B-tuning with F examples per label
LLM_METHOD_PATTERNS = [*LLM_METHODS, r"behaviorlm_F\d+"]
TABLE5_METHODS = [
    "llm_zero_shot",
    "llm_full_ft",
    "behaviorlm_anchor_only",
    "behaviorlm",
]
TABLE6_METHODS = ["behaviorlm"] + [f"behaviorlm_{a}" for a in BEHAVIORLM["ablations"]]
FEW_SHOT = [f"behaviorlm_F{n}" for n in BEHAVIORLM["few_shot"]]


def get_behaviorlm_model(wildcards):
    """The base LLM directory: the converted embedded model or a configured path."""
    model = BEHAVIORLM["model"]
    return "models/smollm2-135m-instruct" if model == "embedded" else model


def get_atune_stage(wildcards):
    """What a first stage trains on (see behaviorlm.smk)."""
    return {
        "anchor": {"anchors_only": True, "order": "anchor", "aux": True},
        "no_aux": {"anchors_only": True, "order": "anchor", "aux": False},
        "full": {"anchors_only": False, "order": "anchor", "aux": False},
        "tail": {"anchors_only": True, "order": "tail", "aux": False},
    }[wildcards.arm]


def _adapter(method):
    if method in LLM_METHODS:
        return LLM_METHODS[method]
    return f"btune_difficulty_anchor_F{method.removeprefix('behaviorlm_F')}"


def get_llm_predict_inputs(wildcards):
    inputs = {
        "model": get_behaviorlm_model(wildcards),
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
    }
    adapter = _adapter(wildcards.method)
    if adapter:
        inputs["adapter"] = (
            f"models/behaviorlm/{wildcards.dataset}/{adapter}/seed{wildcards.seed}"
        )
    return inputs


def get_pretrained_models(wildcards):
    return expand(
        "models/predictors/{dataset}/{model}/real/seed{seed}.pt",
        dataset=wildcards.dataset,
        model=PREDICTORS,
        seed=SEEDS,
    )


def _method_seeds(method):
    """The seeds a method runs with: zero-shot once (it has no seed), the few-shot curve on the
    first seed, every other row on every BehaviorLM seed."""
    if method not in LLM_METHODS:
        return BLM_SEEDS[:1]
    return [0] if LLM_METHODS[method] is None else BLM_SEEDS


def _llm_parts(methods):
    """Every method's rows on every BehaviorLM dataset."""
    parts = []
    for method in methods:
        parts += expand(
            "results/{dataset}/parts/llm/{method}_seed{seed}.csv",
            dataset=BLM_DATASETS,
            method=method,
            seed=_method_seeds(method),
        )
    return parts


def get_llm_table_inputs(wildcards, table=None):
    table = table or wildcards.table
    if table in ("table7", "table9"):
        return get_bua_table_inputs(wildcards, table)
    if not BLM_DATASETS:
        raise WorkflowError(
            f"results/{table}.csv needs BehaviorLM datasets: set behaviorlm.datasets"
        )
    if table == "table5":
        return {
            "parts": _llm_parts(TABLE5_METHODS)
            + expand(
                "results/{dataset}/parts/llm/sequential.csv", dataset=BLM_DATASETS
            ),
            "selections": _selections(TABLE5_METHODS),
        }
    return {
        "parts": _llm_parts(TABLE6_METHODS + FEW_SHOT),
        "selections": _selections(TABLE6_METHODS + FEW_SHOT),
    }


def _selections(methods):
    """The selection reports of the rows that B-tune (what their B-tuning set holds)."""
    reports = []
    for method in methods:
        adapter = _adapter(method)
        if adapter and adapter.startswith("btune_"):
            reports += expand(
                "results/{dataset}/behaviorlm/select_{selection}_seed{seed}.json",
                dataset=BLM_DATASETS,
                selection=adapter.removeprefix("btune_"),
                seed=_method_seeds(method),
            )
    # BehaviorLM's own set is also the few-shot curve's at F = per_label: list it once
    return list(dict.fromkeys(reports))
