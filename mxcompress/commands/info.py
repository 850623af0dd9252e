"""``mxcompress info``: byte accounting of an ``.mxc`` file."""
from ..deep_compression.container import info_json, read_info


def add_parser(sub):
    parser = sub.add_parser(
        'info', help='sizes inside an .mxc file',
        description='Verify an .mxc file and print its size: total, graph and param bytes, '
        'and per layer the bytes of codebook, indices, gaps, Huffman tables and headers, '
        'with the theoretical log2(k)/32 next to the real bits per weight.')
    parser.add_argument('file', help='the .mxc file')
    parser.add_argument('--json', action='store_true', help='print JSON')
    parser.set_defaults(func=run)


def run(args):
    info = read_info(args.file)
    if args.json:
        print(info_json(info))
        return
    print('%s: %d bytes = graph %d + params %d (header %d, table %d, dense params %d)'
          % (args.file, info['total_bytes'], info['graph_bytes'], info['param_bytes'],
             info['header_bytes'], info['toc_bytes'], info['dense_bytes']))
    print('%-28s %9s %8s %5s %8s %8s %8s %7s %7s %8s %8s' % (
        'weight', 'weights', 'nonzero', 'bits', 'codebook', 'indices', 'gaps', 'tables',
        'total', 'log2k/32', 'real/32'))
    for name, m in info['layers'].items():
        print('%-28s %9d %8d %5d %8d %8d %8d %7d %7d %8.4f %8.4f' % (
            name, m['weights'], m['nonzeros'], m['bits'], m['codebook'] + m['values'],
            m['indices'], m['gaps'], m['huffman_tables'], m['total'],
            m.get('theoretical_q_fraction', 1.0), m['real_fraction_of_fp32']))
