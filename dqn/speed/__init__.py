"""What exists only for speed: the GPU fast path, the compiled optimizer step, the allocator
settings, and the rules that pick them under "auto".

    device_replay.py   DeviceReplay: the replay memory on the learner's device, sampled there
    fast_learner.py    FastLearner: the update and the acting pass captured as CUDA graphs
    compiled_step.py   torch.compile of the optimizer step, with an eager fallback
    allocator.py       glibc malloc thresholds that keep an update's freed buffers mapped
    auto.py            the "auto" rules of --fast-path, --compile and --channels-last, each with
                       its measured reason
    placement.py       where the replay goes (GPU or host) when N trainings share a GPU
    choices.py         the speed choices of one run, resolved once; a resume keeps the run's own
    self_check.py      the fast path compared with the plain path at each start or resume of a
                       training
    fallback.py        a failed check sends the run to the plain path, recorded in config.json

The rule of this package: each part is the same algorithm as the plain path (dqn.replay,
dqn.agent, dqn.optim), only faster, pinned to it by equality tests (tests/test_fast_path.py:
DeviceReplay's stacks, validity and sampling distribution are ReplayMemory's, FastLearner's
losses and weights Learner's, the compiled step the eager one up to float rounding; the
allocator settings change only where memory sits). Where a part changes float rounding or a
random stream, the run records the choice in config.json and a resume keeps it. The plain path
never imports this package: only the composition root (dqn.train, dqn.build) and the benchmarks do.
"""
