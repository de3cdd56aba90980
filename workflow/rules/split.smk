# Users 8:1:1 train/val/test by seed; chronological support/query for val/test users.


rule split_users:
    input:
        events="data/processed/{dataset}/events.parquet",
    output:
        split="data/processed/{dataset}/split.parquet",
        report="data/processed/{dataset}/split_report.json",
    log:
        "logs/{dataset}/split_users.log",
    conda:
        "../envs/behaviorflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=library_code("split_users"),
        settings=get_split_settings,
    script:
        "../scripts/split_users.py"
