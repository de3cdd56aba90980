# Input functions and settings of the manifest and the final targets (audit.smk).


def get_result_files():
    """Every result the manifest covers: tables with summaries and pages, fidelity and privacy."""
    per_table = ["{table}.csv", "{table}_summary.csv", "{table}.md"]
    return expand([f"results/{name}" for name in per_table], table=TABLES) + expand(
        "results/{dataset}/{kind}.csv", dataset=DATASETS, kind=["fidelity", "privacy"]
    )


def get_report_files():
    """Every rendered report page (HTML) and the figures they embed."""
    return (
        expand(
            "reports/{dataset}_{page}.html",
            dataset=DATASETS,
            page=["data_overview", "fidelity_privacy"],
        )
        + expand(
            "reports/figures/{dataset}_{figure}.png",
            dataset=DATASETS,
            figure=[
                "behaviour_shares",
                "activity",
                "user_distributions",
                "time_of_day",
            ],
        )
        + expand("reports/{table}.html", table=TABLES)
        + expand("reports/figures/{table}.png", table=TABLES)
    )


def get_manifest_files():
    """What the manifest covers: every result and report, and each dataset's anonymisation report,
    whose key id shows a run with another pseudonym key at once."""
    return (
        get_result_files()
        + get_report_files()
        + expand("data/processed/{dataset}/anonymization_report.json", dataset=DATASETS)
    )


def get_final_targets():
    """Every result and report, and the manifest of their checksums (what an auditor verifies)."""
    return get_result_files() + get_report_files() + ["results/MANIFEST.sha256"]
