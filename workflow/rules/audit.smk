# What an auditor verifies: the checksum manifest of every result and report
# (`python -m behaviorflow.audit` regenerates everything and compares).


rule write_manifest:
    input:
        get_manifest_files(),
    output:
        "results/MANIFEST.sha256",
    log:
        "logs/manifest.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("write_manifest"),
    script:
        "../scripts/write_manifest.py"
