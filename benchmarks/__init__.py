"""scopegate benchmarks: run them all with `python -m benchmarks` (see README.md here)."""
