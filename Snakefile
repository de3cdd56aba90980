# behaviorflow: LLM-based modelling of human daily behaviour (BehaviorGen, BehaviorLM, BUA).
# Thin on purpose: the config, the stage files, and the default target.


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs/behaviorgen.smk"
include: "workflow/rules/inputs/predict.smk"
include: "workflow/rules/inputs/behaviorlm.smk"
include: "workflow/rules/inputs/bua.smk"
include: "workflow/rules/inputs/validate.smk"
include: "workflow/rules/inputs/tables.smk"
include: "workflow/rules/inputs/report.smk"
include: "workflow/rules/inputs/audit.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/anonymize.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/profiles.smk"
include: "workflow/rules/behaviorgen.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/behaviorlm.smk"
include: "workflow/rules/bua.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/audit.smk"


rule all:
    default_target: True
    input:
        get_final_targets(),
