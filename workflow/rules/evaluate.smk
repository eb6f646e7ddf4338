rule evaluate:
    """The paper's final evaluation of one run's best or final weights: `python -m dqn.evaluate`
    (30 episodes of at most 5 minutes at epsilon 0.05 with the nature preset), on CPU."""
    input:
        weights=run_file("{weights}.pt"),
    output:
        episodes=DQN_EPISODES,
    log:
        "logs/{experiment}/evaluate/{game}/seed{seed}/{weights}.log",
    conda:
        "../envs/dqn.yaml"
    threads: EVALUATION_WORKERS
    shell:
        "python -m dqn.evaluate --game {wildcards.game} --weights {input.weights:q} --label {wildcards.weights}"
        " --seed {wildcards.seed} --out {output.episodes:q} --workers {threads} --device cpu"
        " > {log:q} 2>&1"


rule random_agent:
    """The paper's random baseline for one game and seed: `python -m baselines.random_agent`, as
    many episodes as the final evaluation."""
    output:
        episodes=RANDOM_EPISODES,
    log:
        "logs/{experiment}/random/{game}/seed{seed}.log",
    params:
        episodes=HP.final_eval_episodes,
    conda:
        "../envs/dqn.yaml"
    threads: EVALUATION_WORKERS
    shell:
        "python -m baselines.random_agent --game {wildcards.game} --seed {wildcards.seed}"
        " --out {output.episodes:q} --episodes {params.episodes} --workers {threads}"
        " > {log:q} 2>&1"
