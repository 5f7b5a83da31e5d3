"""Measurements behind ``fewshot-gui bench`` and the scripts in ``benchmarks/``: throughput (decode,
model, end to end), re-label latency, memory growth, and the synthetic images they (and the tests)
run on. Plain functions returning numbers; the command formats them."""
