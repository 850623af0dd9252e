"""``mxcompress networks``: list the networks the builders know."""


def add_parser(sub):
    parser = sub.add_parser('networks', help='list the known network names',
                            description='List every network name accepted by --network.')
    parser.set_defaults(func=run)


def run(args):
    import symbols
    for name in symbols.known_networks():
        print(name)
