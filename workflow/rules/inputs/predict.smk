# Input functions and settings of the predictor rules (predict.smk).


def get_pretrain_inputs(wildcards):
    """The split; for an augmented training set also the generator's synthetic population."""
    inputs = {"split": f"data/processed/{wildcards.dataset}/split.parquet"}
    if wildcards.train_set.startswith("aug-"):
        generator = wildcards.train_set.removeprefix("aug-")
        inputs["synthetic"] = (
            f"data/synthetic/{wildcards.dataset}/{generator}/population.parquet"
        )
    return inputs


def get_finetune_inputs(wildcards):
    """The real-pretrained predictor of the same seed, the split, every generator's personal data."""
    inputs = {
        "model": f"models/predictors/{wildcards.dataset}/{wildcards.model}/real/seed{wildcards.seed}.pt",
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
    }
    for g in GENERATORS:
        inputs[f"personal_{g}"] = (
            f"data/synthetic/{wildcards.dataset}/{g}/personal.parquet"
        )
    return inputs
