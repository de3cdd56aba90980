# Raw logs -> canonical events (DuckDB), rejects with line numbers, and an ingest report.


rule ingest:
    input:
        unpack(get_raw_inputs),
    output:
        events="data/interim/{dataset}/events.parquet",
        attributes="data/interim/{dataset}/user_attributes.parquet",
        rejects="data/interim/{dataset}/rejects.csv",
        report="data/interim/{dataset}/ingest_report.json",
    log:
        "logs/{dataset}/ingest.log",
    benchmark:
        "logs/benchmarks/{dataset}/ingest.tsv"
    conda:
        "../envs/behaviorflow.yaml"
    # one DuckDB thread: seconds at these sizes, and the job starts beside the model conversion
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=library_code("ingest"),
        settings=get_dataset_settings,
    script:
        "../scripts/ingest.py"
