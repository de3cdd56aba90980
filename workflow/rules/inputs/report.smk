# Input functions and settings of the report rules (report.smk).


def get_report_labels(wildcards):
    """The labels a report notebook is parameterised with: its wildcards (dataset or table)."""
    return dict(wildcards.items())


def get_data_overview_inputs(wildcards):
    """The dataset's events, split and stage reports; the leaderboard (its predictability) and
    every dataset's structure statistics (side by side)."""
    d = wildcards.dataset
    inputs = {
        "template": "workflow/notebooks/data_overview.ipynb",
        "events": f"data/processed/{d}/events.parquet",
        "split": f"data/processed/{d}/split.parquet",
        "ingest_report": f"data/interim/{d}/ingest_report.json",
        "anonymization_report": f"data/processed/{d}/anonymization_report.json",
        "split_report": f"data/processed/{d}/split_report.json",
        "leaderboard": "results/leaderboard_summary.csv",
    }
    for dataset in DATASETS:
        inputs[f"structure_{dataset}"] = f"results/{dataset}/structure.json"
    return inputs


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
