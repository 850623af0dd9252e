"""Reporting: results files, published references, plots and the project report.

- :mod:`.results`: read / merge ``benchmarks/results/*.json`` under a lock, atomically.
- :mod:`.references`: the published figures our results are held against.
- :mod:`.plots`: matplotlib set-up (headless) and atomic PNG saving.
- :mod:`.report`: ``benchmarks/REPORT.md`` and its Pareto plots.
"""
