"""uvcffi's benchmarks: workloads (bench_*.py), the side-by-side runner (run.py), load tools (c/).

Run ``python -m bench`` (or ``make bench``); see bench/README.md.
"""
