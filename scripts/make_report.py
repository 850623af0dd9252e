#!/usr/bin/env python
"""Write benchmarks/REPORT.md and its PNG figures from benchmarks/results/*.json.

Same as ``mxcompress report``; run from the repository root or pass the paths.
"""
import os
import sys

from mxcompress.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __name__ == '__main__':
    sys.exit(main(['report', '--results-dir', os.path.join(ROOT, 'benchmarks', 'results'),
                   '--output', os.path.join(ROOT, 'benchmarks', 'REPORT.md')] + sys.argv[1:]))
