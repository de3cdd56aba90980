# Input functions and settings of BehaviorGen's rules (behaviorgen.smk).


def generation_settings(generator):
    """What one generator depends on (so changing the other's settings reruns nothing here)."""
    gen = config["generation"]
    own = {"markov": ["markov"], "behaviorgen": ["behaviorgen", "cache_dir"]}[generator]
    keys = ["weeks", "population_users", "personal_splits", "seed", *own]
    return {k: gen[k] for k in keys}


def get_generation_settings(wildcards):
    settings = generation_settings(wildcards.generator)
    # who the population's source users are (the personal part does not depend on it)
    if getattr(wildcards, "part", None) == "population":
        settings["population_sources"] = config["generation"]["population_sources"]
    return settings


def get_generator_model(wildcards):
    """The local generator model directory: the converted embedded model or a configured path."""
    model = config["generation"]["behaviorgen"]["transformers"]["model"]
    return "models/smollm2-135m-instruct" if model == "embedded" else model


def get_generation_inputs(wildcards, generator=None):
    """Split and profiles; for BehaviorGen on a local model also the model and (tuned) adapter."""
    inputs = {
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "profiles": f"data/processed/{wildcards.dataset}/profiles.parquet",
    }
    bg = config["generation"]["behaviorgen"]
    generator = generator or wildcards.generator
    if generator == "behaviorgen" and bg["backend"] == "transformers":
        inputs["model"] = get_generator_model(wildcards)
        if bg["transformers"]["tune"]:
            inputs["adapter"] = f"models/adapters/{wildcards.dataset}/behaviorgen"
    return inputs


def get_generation_gpus(wildcards, generator=None):
    """GPUs only where a model runs: BehaviorGen on a local model."""
    local = config["generation"]["behaviorgen"]["backend"] == "transformers"
    generator = generator or wildcards.generator
    return config["resources"]["gpu"] if generator == "behaviorgen" and local else 0


def ablation_dir(wildcards):
    return f"data/synthetic/{wildcards.dataset}/ablation/{wildcards.variant}/seed{wildcards.seed}"


def get_ablation_inputs(wildcards):
    return get_generation_inputs(wildcards, "behaviorgen")


def get_ablation_gpus(wildcards):
    return get_generation_gpus(wildcards, "behaviorgen")
