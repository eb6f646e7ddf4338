localrules:
    report,


rule report:
    """The HTML report with its figures: `python -m analysis.report`. Only the report options are
    parameters, so changing one re-renders the report and re-runs nothing else."""
    input:
        scores=rules.aggregate.output.scores,
        episodes=rules.aggregate.output.episodes,
        learning_curves=rules.aggregate.output.learning_curves,
        runs=rules.aggregate.output.runs,
        deviations=rules.aggregate.output.deviations,
        provenance=rules.aggregate.output.provenance,
    output:
        html=report(
            "reports/{experiment}/report.html",
            caption="../report/report_html.rst",
            category="Report",
        ),
        normalized_scores=report(
            "reports/{experiment}/figures/normalized_scores.png",
            caption="../report/normalized_scores.rst",
            category="Figures",
            subcategory="Scores",
        ),
        scores_vs_paper=report(
            "reports/{experiment}/figures/scores_vs_paper.png",
            caption="../report/scores_vs_paper.rst",
            category="Figures",
            subcategory="Scores",
        ),
        learning_curves=report(
            "reports/{experiment}/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Figures",
            subcategory="Learning",
        ),
        average_max_q=report(
            "reports/{experiment}/figures/average_max_q.png",
            caption="../report/average_max_q.rst",
            category="Figures",
            subcategory="Learning",
        ),
    log:
        "logs/{experiment}/report.log",
    params:
        results=tables_folder,
        figures=figures_folder,
        bootstrap_repetitions=REPORT["bootstrap_repetitions"],
        bootstrap_seed=REPORT["bootstrap_seed"],
    conda:
        "../envs/dqn.yaml"
    shell:
        "python -m analysis.report --results {params.results:q} --out {output.html:q} --figures-dir {params.figures:q}"
        " --bootstrap-reps {params.bootstrap_repetitions} --seed {params.bootstrap_seed}"
        " > {log:q} 2>&1"


# With --keep-going a failed training stops only its own game, but the aggregate and report jobs
# need every planned file and so never run. After any failure, this hook builds the tables and
# the report from whatever exists (missing runs marked `missing`), by the same commands, into
# results/{experiment}/partial/ and reports/{experiment}/partial/, which no rule writes.
onerror:
    partial_report()


onsuccess:
    remove_partial_report()
