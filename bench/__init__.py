"""Benchmarks: `python -m bench [--quick] [--only NAME ...]` (see bench/__main__.py and bench/measure.py).

Every module in this package except `__main__`, `measure` and `glue_shared` (what the Glue benchmarks
`glue_sales`, `glue_gharchive` and `glue_sensor` share) is a benchmark module: importing it registers
its benchmarks with `@measure.benchmark(...)`, and `python -m bench` imports them all.
"""
