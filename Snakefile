# Reproduce Mnih et al. (2015): DQN and the random agent on the paper's 49 Atari games, several
# seeds each, then tidy results tables and a report. See the README ("The full reproduction").
#
#   snakemake --cores all                                    # config/config.yaml: the paper
#   snakemake --cores all --configfile config/demo.yaml      # 2 games, minutes on a laptop CPU
#   snakemake --cores all --configfile config/nips2013.yaml  # the 2013 paper: Table 1's 7 games
#   snakemake --profile profiles/slurm                       # on a Slurm cluster

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/compare.smk"


rule all:
    input:
        expand(rules.aggregate.output, experiment=EXPERIMENT),
        expand(rules.report.output, experiment=EXPERIMENT),
        expand(rules.compare.output.html, baseline=COMPARE_WITH, experiment=EXPERIMENT),
    default_target: True
