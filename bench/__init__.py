"""Benchmarks of the platform. Not part of the test run; see README "Performance"."""

# The benchmark integration's key (a fixture, not a secret).
BENCH_KEY = "bench000000000000000000000000000"
