"""``mxcompress report``: every benchmark result side by side (Markdown + PNG figures)."""
import os

from ..reporting.report import write_report


def add_parser(sub):
    parser = sub.add_parser(
        'report', help='write benchmarks/REPORT.md and its figures from the results',
        description='Read benchmarks/results/*.json and write a Markdown report with an '
        'accuracy-vs-size (Pareto) plot per network, measured speed-up vs FLOP reduction, and '
        'the published numbers beside ours.')
    parser.add_argument('--results-dir', default=os.path.join('benchmarks', 'results'),
                        help='directory of the benchmark JSON files')
    parser.add_argument('--output', default=os.path.join('benchmarks', 'REPORT.md'),
                        help='Markdown file to write (figures go beside it)')
    parser.set_defaults(func=run)


def run(args):
    if not os.path.isdir(args.results_dir):
        raise ValueError('--results-dir %s is not a directory' % args.results_dir)
    figures = write_report(args.results_dir, args.output)
    print('wrote %s and %d figure(s): %s' % (args.output, len(figures),
                                           ', '.join(os.path.basename(f) for f in figures)))
