"""``mxcompress convert-data``: convert an image classification data set to another format."""

from ..argtypes import chw_shape, positive_int
from ..sources import FORMATS, TARGETS, check_output, load_dataset, open_source, write_dataset


def add_parser(sub):
    parser = sub.add_parser(
        'convert-data', help='convert an image classification data set (idx, rec, folder, '
                             'npz) to rec, folder or npz',
        description='Read a data set with a train and a test split -- a directory of the four '
        'MNIST-style IDX files, a RecordIO directory (train.rec/.idx, test.rec/.idx or '
        'val.rec/.idx, as im2rec writes them), an image folder (train/ and test/ or val/, one '
        'sub-folder of PNG/JPEG images per class) or a .npz (x_train, y_train, x_test, '
        'y_test) -- and write it losslessly as rec (OUT/train.rec + .idx, OUT/test.rec + .idx, '
        'PNG records), folder (OUT/train/<class>/NNNNN.png, OUT/test/...) or npz (one file). '
        'Class names are kept (classes.txt beside rec files). Everything is read and checked '
        'before anything is written; the output appears whole or not at all.')
    parser.add_argument('src', metavar='SRC', help='the data set to read (directory or .npz)')
    parser.add_argument('--to', required=True, choices=TARGETS, help='format to write')
    parser.add_argument('out', metavar='OUT',
                        help='new (or empty) directory for rec/folder, a .npz file for npz')
    parser.add_argument('--data-format', choices=FORMATS, default=None,
                        help='format of SRC (default: detected from the path)')
    parser.add_argument('--data-shape', type=chw_shape, default=None, metavar='C,H,W',
                        help='convert every image to this shape: grey <-> RGB, cv2 resize '
                             '(needed when image sizes differ)')
    parser.add_argument('--num-examples', type=positive_int, default=None,
                        help='keep only the first N training images')
    parser.add_argument('--num-test-examples', type=positive_int, default=None,
                        help='keep only the first N test images')
    parser.set_defaults(func=run)


def run(args):
    source = open_source(args.src, args.data_format)
    out = check_output(args.out, args.to, source.inputs(), args.src)
    dataset = load_dataset(source, data_shape=args.data_shape, num_examples=args.num_examples,
                           num_test_examples=args.num_test_examples)
    write_dataset(out, dataset, args.to)
    images = dataset.train[0]
    print('%s: %s from %s (%s): train %d, test %d images of %s %s, %d classes%s' % (
        out, args.to, args.src, dataset.format, len(images), len(dataset.test[0]),
        'x'.join(map(str, images.shape[1:])), images.dtype, dataset.num_classes,
        ' (%s)' % ', '.join(dataset.classes) if dataset.classes and len(dataset.classes) <= 12
        else ''))
