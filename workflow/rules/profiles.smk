# Profiles from the events a model may see (train users: all; val/test users: support only).


rule build_profiles:
    input:
        split="data/processed/{dataset}/split.parquet",
        profiles_input="data/processed/{dataset}/profiles_input.parquet",
    output:
        profiles="data/processed/{dataset}/profiles.parquet",
    log:
        "logs/{dataset}/build_profiles.log",
    conda:
        "../envs/behaviorflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=library_code("build_profiles"),
    script:
        "../scripts/build_profiles.py"
