# The embedded default dataset: a SIMULATED phone-log population (see behaviorflow.data.simulate).


rule simulate_raw_logs:
    output:
        log="data/raw/{dataset}/phone_log.csv.gz",
        accounts="data/raw/{dataset}/accounts.csv",
    log:
        "logs/{dataset}/simulate_raw_logs.log",
    wildcard_constraints:
        dataset="|".join(SIMULATED) or "^$",
    conda:
        "../envs/behaviorflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=library_code("simulate_raw_logs"),
        settings=get_simulation_settings,
    script:
        "../scripts/simulate_raw_logs.py"
