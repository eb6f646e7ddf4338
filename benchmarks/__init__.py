"""Benchmarks of the training loop: profile, throughput table and the side-by-side peer comparison."""
