"""Unlabeled images streamed from tar shards (the webdataset format)."""
import os.path as osp
import random
import tarfile
import warnings
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from torch.utils.data import IterableDataset, get_worker_info

from mmpromptkd.registry import DATASETS
from .class_names import read_class_names
from .transforms.load_image_from_file_safe import ON_ERROR_CHOICES
from .unlabeled_images import IMAGE_EXTENSIONS
from .utils import build_pipeline, is_int, shorten

_TAR_BLOCK = 512
# Webdataset's keys of the image members.
_IMAGE_KEYS = tuple(e.lstrip('.') for e in IMAGE_EXTENSIONS)


class CorruptShardError(ValueError):
    """A tar shard is truncated, not a tar file, or holds a bad sample."""


def expand_shards(shards: Union[str, Sequence[str]]) -> List[str]:
    """Expand brace patterns to existing local files, in order; a URL or
    ``pipe:`` command (webdataset would run a program) is refused."""
    try:
        from braceexpand import braceexpand  # installed with webdataset
        import webdataset  # noqa: F401
    except ImportError as e:
        raise ImportError('UnlabeledShards reads shards with webdataset: '
                          "pip install 'mmpromptkd[shards]'") from e
    patterns = [shards] if isinstance(shards, str) else list(shards)
    if not patterns:
        raise ValueError('UnlabeledShards: shards is empty; expected tar '
                         'files such as "data/shard-{000..099}.tar"')
    paths: List[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError(f'UnlabeledShards: shards must be paths, got '
                             f'{pattern!r}')
        if pattern.startswith('pipe:') or '://' in pattern:
            raise ValueError(
                f'UnlabeledShards: {pattern!r} is not a local path; only '
                'local tar files are read (a URL or pipe: command would run '
                'a program). Mount or copy the shards.')
        paths.extend(osp.expanduser(p) for p in braceexpand(pattern))
    missing = [p for p in paths if not osp.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f'UnlabeledShards: {len(missing)} of {len(paths)} shard(s) not '
            f'found: {shorten(missing)}')
    # One file named twice (a.tar, ./a.tar, sub/../a.tar, a link to it).
    first: dict = {}
    for path in paths:
        real = osp.realpath(path)
        if real in first:
            raise ValueError(
                f'UnlabeledShards: shard {path!r} is {first[real]!r}, listed '
                'already; each would be read twice an epoch')
        first[real] = path
    return paths


def check_tar_end(path: str) -> None:
    """Refuse a tar file without its two zero end blocks: a shard cut
    between two members would otherwise read as complete."""
    size = osp.getsize(path)
    if size < 2 * _TAR_BLOCK or size % _TAR_BLOCK:
        raise CorruptShardError(
            f'{path}: {size} bytes, not a whole number of 512-byte tar '
            'blocks; the shard is truncated or not a tar file')
    with open(path, 'rb') as f:
        f.seek(size - 2 * _TAR_BLOCK)
        if f.read(2 * _TAR_BLOCK).strip(b'\0'):
            raise CorruptShardError(
                f'{path} does not end with the end-of-archive blocks of a '
                'tar file; the shard is truncated')


@DATASETS.register_module()
class UnlabeledShards(IterableDataset):
    """An endless stream of unlabeled images from local tar shards.

    Each webdataset sample holds exactly one image member, decoded by the
    pipeline's ``LoadImageFromFileSafe`` from ``img_bytes``. Shard order,
    sharding, shuffling and ``len()``: ``docs/unlabeled_data.md``.

    Args:
        shards (str | Sequence[str]): Local tar files or brace patterns.
        classes (str | Sequence[str], optional): Class names or their file.
        pipeline (Sequence[dict | Callable]): Transforms.
        seed (int): Seed of the shard order and of the shuffle buffer.
        shuffle_buffer (int): Images mixed within a reader; 1: none.
        on_error (str): 'raise' or 'skip' (and count) a bad shard or sample.
        num_images (int, optional): Images in all shards; None counts them.
    """

    def __init__(self,
                 shards: Union[str, Sequence[str]],
                 classes: Optional[Union[str, Sequence[str]]] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 seed: int = 0,
                 shuffle_buffer: int = 1000,
                 on_error: str = 'raise',
                 num_images: Optional[int] = None) -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f'UnlabeledShards: on_error must be one of '
                             f'{ON_ERROR_CHOICES}, got {on_error!r}')
        if not is_int(shuffle_buffer) or shuffle_buffer < 1:
            raise ValueError('UnlabeledShards: shuffle_buffer must be an int '
                             f'>= 1, got {shuffle_buffer!r}')
        self.shards = expand_shards(shards)
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.on_error = on_error
        names = () if classes is None else read_class_names(classes)
        self._metainfo: Dict = dict(classes=names)
        self.pipeline = Compose(build_pipeline(pipeline))
        # Built in each process once distributed training is set up.
        self.rank, self.world_size = get_dist_info()
        self._skipped = 0
        if num_images is None:
            num_images = self._count_images()
        elif not is_int(num_images) or num_images < 1:
            raise ValueError('UnlabeledShards: num_images must be an int >= '
                             f'1, got {num_images!r}')
        self.num_images = num_images
        # The stream is endless; torch warns when a loader yields more than
        # its length, which here is the length of one epoch by design.
        warnings.filterwarnings(
            'ignore', message=r'Length of IterableDataset .*UnlabeledShards')

    def __len__(self) -> int:
        return max(self.num_images // self.world_size, 1)

    def _count_images(self) -> int:
        """Count the samples with an image from the tar headers."""
        from webdataset.tariterators import base_plus_ext
        total, readable = 0, []
        for path in self.shards:
            keys = set()
            try:
                check_tar_end(path)
                with tarfile.open(path, 'r:') as tar:
                    for member in tar:
                        # Keys as webdataset groups the members.
                        key, ext = base_plus_ext(member.name)
                        if member.isreg() and key is not None and \
                                ext.lower() in _IMAGE_KEYS:
                            keys.add(key)
            except (CorruptShardError, tarfile.TarError, OSError) as e:
                self._skip_or_raise(e if isinstance(e, CorruptShardError)
                                    else CorruptShardError(
                                        f'{path}: not a readable tar file '
                                        f'({e})'))
                continue
            total += len(keys)
            readable.append(path)
        self.shards = readable
        if total == 0:
            raise CorruptShardError('UnlabeledShards: no image in the shards')
        return total

    @property
    def metainfo(self) -> dict:
        """dict: ``classes``, the class names."""
        return dict(self._metainfo)

    def shards_of(self, epoch: int, reader: int, readers: int) -> List[str]:
        """The shards, in order, of reader ``rank * num_workers +
        worker_id`` of ``readers`` in ``epoch``."""
        order = list(self.shards)
        random.Random(f'{self.seed}-{epoch}').shuffle(order)
        return order[reader::readers]

    def _reader(self) -> tuple:
        info = get_worker_info()
        workers, worker = (1, 0) if info is None else (info.num_workers,
                                                       info.id)
        readers = self.world_size * workers
        if len(self.shards) < readers:
            raise ValueError(
                f'UnlabeledShards: {len(self.shards)} shard(s) for {readers} '
                f'readers ({self.world_size} process(es) x {workers} data '
                'worker(s)); every reader needs a shard of its own: write '
                'smaller shards or use fewer workers')
        return self.rank * workers + worker, readers

    def _skip_or_raise(self, error: CorruptShardError) -> None:
        if self.on_error == 'raise':
            raise CorruptShardError(
                f'{error}. Set on_error="skip" to skip it (counted in the '
                'log)')
        self._skipped += 1
        print_log(
            f'UnlabeledShards: skipped {error} ({self._skipped} skipped by '
            'this reader so far)',
            logger='current')

    def _samples(self, path: str) -> Iterator[dict]:
        """The samples of one shard, each with its image bytes."""
        from webdataset.tariterators import group_by_keys, tar_file_expander
        try:
            check_tar_end(path)
        except CorruptShardError as e:
            self._skip_or_raise(e)
            return
        read = 0
        with open(path, 'rb') as stream:
            members = tar_file_expander([dict(url=path, stream=stream)])
            samples = group_by_keys(members)
            while True:
                try:
                    sample = next(samples)
                except StopIteration:
                    return
                except Exception as e:  # noqa: BLE001  (tar errors)
                    self._skip_or_raise(
                        CorruptShardError(
                            f'{path}: unreadable after {read} sample(s) '
                            f'({e}); the rest of the shard is lost'))
                    return
                read += 1
                images = [k for k in sample if k in _IMAGE_KEYS]
                name = f'{path}#{sample["__key__"]}'
                if len(images) != 1:
                    others = sorted(k for k in sample if not k.startswith('_'))
                    self._skip_or_raise(
                        CorruptShardError(
                            f'{name} has {len(images)} image members (of '
                            f'{others}); expected exactly one of '
                            f'{list(_IMAGE_KEYS)}'))
                    continue
                yield dict(img_path=name, img_bytes=sample[images[0]])

    def __iter__(self) -> Iterator[dict]:
        reader, readers = self._reader()
        epoch = 0
        while True:
            rng = random.Random(f'{self.seed}-{epoch}-{reader}')
            buffer: List[dict] = []
            for path in self.shards_of(epoch, reader, readers):
                for sample in self._samples(path):
                    sample['epoch'] = epoch
                    if len(buffer) < self.shuffle_buffer:
                        buffer.append(sample)
                        continue
                    i = rng.randrange(len(buffer))
                    buffer[i], sample = sample, buffer[i]
                    yield from self._transformed(sample)
            if not buffer:
                # Every shard of this reader was skipped: never loop idle.
                raise CorruptShardError(
                    f'UnlabeledShards: no readable sample in the shards of '
                    f'reader {reader} in epoch {epoch}')
            rng.shuffle(buffer)
            for sample in buffer:
                yield from self._transformed(sample)
            epoch += 1

    def _transformed(self, sample: dict) -> Iterator[dict]:
        """The sample through the pipeline, unless the pipeline drops it."""
        out = self.pipeline(sample)
        if out is not None:
            yield out

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({len(self.shards)} shards, '
                f'{len(self._metainfo["classes"])} classes, seed '
                f'{self.seed}, rank {self.rank} of {self.world_size})')
