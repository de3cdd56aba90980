# Pseudonyms (keyed HMAC, rotating), per-user zones, floored timestamps, k-anonymous attributes.


rule anonymize:
    input:
        events="data/interim/{dataset}/events.parquet",
        attributes="data/interim/{dataset}/user_attributes.parquet",
    output:
        events="data/processed/{dataset}/events.parquet",
        profiles_input="data/processed/{dataset}/profiles_input.parquet",
        report="data/processed/{dataset}/anonymization_report.json",
    log:
        "logs/{dataset}/anonymize.log",
    benchmark:
        "logs/benchmarks/{dataset}/anonymize.tsv"
    conda:
        "../envs/behaviorflow.yaml"
    # one DuckDB thread: seconds at these sizes, and the job starts beside the model conversion
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=library_code("anonymize"),
        settings=get_anonymization_settings,
        dataset_format=get_dataset_format,
    script:
        "../scripts/anonymize.py"
