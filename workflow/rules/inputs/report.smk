# Input functions and settings of the report rules (report.smk).


def get_report_labels(wildcards):
    """The labels a report notebook is parameterised with: its wildcards (dataset or table)."""
    return dict(wildcards.items())


def get_fidelity_privacy_report_inputs(wildcards):
    """The split, the dataset's fidelity and privacy reports, and every generator's synthetic data."""
    inputs = {
        "template": "workflow/notebooks/fidelity_privacy.ipynb",
        "split": f"data/processed/{wildcards.dataset}/split.parquet",
        "fidelity": f"results/{wildcards.dataset}/fidelity.csv",
        "privacy": f"results/{wildcards.dataset}/privacy.csv",
    }
    for generator in GENERATORS:
        for part in ("population", "personal"):
            inputs[f"{generator}_{part}"] = (
                f"data/synthetic/{wildcards.dataset}/{generator}/{part}.parquet"
            )
    return inputs
