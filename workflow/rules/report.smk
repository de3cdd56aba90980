# Report notebooks (papermill) rendered to HTML with their figures embedded, and the figures and
# tables of `snakemake --report`. Parameters are paths and labels only; secrets stay in the
# environment, and a report that would contain one is refused.


rule data_overview_report:
    input:
        unpack(get_data_overview_inputs),
    output:
        notebook="reports/{dataset}_data_overview.ipynb",
        html="reports/{dataset}_data_overview.html",
        behaviour_shares=report(
            "reports/figures/{dataset}_behaviour_shares.png",
            caption="../report/behaviour_shares.rst",
            category="Data",
            subcategory="{dataset}",
        ),
        activity=report(
            "reports/figures/{dataset}_activity.png",
            caption="../report/activity.rst",
            category="Data",
            subcategory="{dataset}",
        ),
    log:
        "logs/{dataset}/report_data_overview.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("data_overview_report", "data_overview"),
        labels=get_report_labels,
        secret_envs=KEY_ENVS,
    script:
        "../scripts/data_overview_report.py"


rule fidelity_privacy_report:
    input:
        unpack(get_fidelity_privacy_report_inputs),
    output:
        notebook="reports/{dataset}_fidelity_privacy.ipynb",
        html="reports/{dataset}_fidelity_privacy.html",
        user_distributions=report(
            "reports/figures/{dataset}_user_distributions.png",
            caption="../report/user_distributions.rst",
            category="Fidelity and privacy",
            subcategory="{dataset}",
        ),
        time_of_day=report(
            "reports/figures/{dataset}_time_of_day.png",
            caption="../report/time_of_day.rst",
            category="Fidelity and privacy",
            subcategory="{dataset}",
        ),
    log:
        "logs/{dataset}/report_fidelity_privacy.log",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("fidelity_privacy_report", "fidelity_privacy"),
        labels=get_report_labels,
        secret_envs=KEY_ENVS,
    script:
        "../scripts/fidelity_privacy_report.py"


rule table_report:
    input:
        template="workflow/notebooks/results_table.ipynb",
        table="results/{table}.csv",
        summary="results/{table}_summary.csv",
        page="results/{table}.md",
    output:
        notebook="reports/{table}.ipynb",
        html="reports/{table}.html",
        plot=report(
            "reports/figures/{table}.png",
            caption="../report/table_figure.rst",
            category="Tables",
            subcategory="{table}",
        ),
    log:
        "logs/report_{table}.log",
    wildcard_constraints:
        table="table[1-9]|leaderboard",
    conda:
        "../envs/behaviorflow.yaml"
    params:
        code=library_code("table_report", "results_table"),
        labels=get_report_labels,
        secret_envs=KEY_ENVS,
    script:
        "../scripts/table_report.py"
