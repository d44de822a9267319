"""UnlabeledImages: folders, file lists, held-out split, bad input."""
import hashlib
import os
import os.path as osp

import pytest

from mmpromptkd.datasets import UnlabeledImages
from mmpromptkd.datasets.unlabeled_images import heldout_draw
from unlabeled_helpers import write_images


def _paths(ds):
    return [ds.get_data_info(i)['img_path'] for i in range(len(ds))]


def test_folder_is_read_recursively_sorted_without_labels(tmp_path):
    root = tmp_path / 'imgs'
    write_images(root, ['b/2.png', 'a/x/1.JPG', 'c.jpeg', '.hidden/h.png',
                        'a/.h.png'])
    ds = UnlabeledImages(data_root=str(root), classes=['cat', 'dog'])
    assert _paths(ds) == [
        str(root / 'a/x/1.JPG'), str(root / 'b/2.png'), str(root / 'c.jpeg')
    ]
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert 'gt_label' not in ds.get_data_info(0)


def test_symlinks_are_followed_and_cycles_listed_once(tmp_path):
    outside = tmp_path / 'outside'
    write_images(outside, ['o.png'])
    root = tmp_path / 'imgs'
    write_images(root, ['a/1.png'])
    os.symlink(outside, root / 'linked')
    os.symlink(root / 'a', root / 'a' / 'loop')  # a cycle
    os.symlink(outside / 'o.png', root / 'file_link.png')
    ds = UnlabeledImages(data_root=str(root))
    assert _paths(ds) == [
        str(root / 'a/1.png'), str(root / 'file_link.png'),
        str(root / 'linked/o.png')
    ]


def test_pipeline_loads_images(tmp_path):
    write_images(tmp_path, ['1.png'])
    ds = UnlabeledImages(
        data_root=str(tmp_path),
        pipeline=[dict(type='mmpromptkd.LoadImageFromFileSafe'),
                  dict(type='PackInputs')])
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 8, 8)
    assert 'gt_label' not in sample['data_samples']


def test_non_image_files_stop_or_are_skipped_on_request(tmp_path):
    write_images(tmp_path, ['1.png'])
    (tmp_path / 'notes.txt').write_text('x')
    (tmp_path / 'data.csv').write_text('x')
    with pytest.raises(ValueError) as e:
        UnlabeledImages(data_root=str(tmp_path))
    assert '2 file(s) that are not images' in str(e.value)
    assert 'data.csv, notes.txt' in str(e.value)
    assert 'skip_non_images=True' in str(e.value)
    ds = UnlabeledImages(data_root=str(tmp_path), skip_non_images=True)
    assert _paths(ds) == [str(tmp_path / '1.png')]


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no image in .*empty'):
        UnlabeledImages(data_root=str(tmp_path / 'empty'))
    with pytest.raises(FileNotFoundError, match='nope is not a folder'):
        UnlabeledImages(data_root=str(tmp_path / 'nope'))
    with pytest.raises(ValueError, match='give data_root'):
        UnlabeledImages()


def test_file_list_relative_to_its_folder_or_data_root(tmp_path):
    write_images(tmp_path / 'imgs', ['b.png', 'a.png'])
    (tmp_path / 'imgs' / 'list.txt').write_text('b.png\na.png\n')
    ds = UnlabeledImages(file_list=str(tmp_path / 'imgs' / 'list.txt'))
    assert _paths(ds) == [str(tmp_path / 'imgs/b.png'),
                          str(tmp_path / 'imgs/a.png')]
    (tmp_path / 'list.txt').write_text('a.png\n')
    ds = UnlabeledImages(
        file_list=str(tmp_path / 'list.txt'),
        data_root=str(tmp_path / 'imgs'))
    assert _paths(ds) == [str(tmp_path / 'imgs/a.png')]


@pytest.mark.parametrize('text, error, match', [
    ('a.png\n\nb.png\n', ValueError, r'list.txt, line 2: blank line'),
    ('a.png\nb.png\na.png\n', ValueError,
     r'line 3: a.png is the file listed already at line 1'),
    # One file under three names: counted three times an epoch before.
    ('a.png\n./a.png\n', ValueError,
     r'line 2: ./a.png is the file listed already at line 1'),
    ('a.png\nsub/../a.png\n', ValueError,
     r'line 2: sub/../a.png is the file listed already at line 1'),
    ('a.png\nmissing.png\n', FileNotFoundError,
     r'1 listed image\(s\) not found .*missing.png'),
    ('a.png\nread.me\n', ValueError, r'1 listed file\(s\) that are not'),
])
def test_bad_file_lists(tmp_path, text, error, match):
    write_images(tmp_path, ['a.png', 'b.png'])
    (tmp_path / 'list.txt').write_text(text)
    with pytest.raises(error, match=match):
        UnlabeledImages(file_list=str(tmp_path / 'list.txt'))


def test_heldout_split_over_file_names_that_are_not_utf8(tmp_path):
    names = [f'{i}.png' for i in range(8)] + [
        os.fsdecode(b'caf\xe9%d.png' % i) for i in range(4)]
    write_images(tmp_path, names)
    train, heldout = (set(_paths(UnlabeledImages(
        data_root=str(tmp_path), split=which, heldout_fraction=0.5,
        heldout_seed=1))) for which in ('train', 'heldout'))
    assert train | heldout == {str(tmp_path / n) for n in names}
    assert not train & heldout
    # Valid UTF-8 names draw what they drew before.
    assert heldout_draw('ok.png', 1) == int.from_bytes(
        hashlib.blake2b(b'1:ok.png', digest_size=8).digest(), 'big') / 2**64


def test_heldout_split_is_disjoint_complete_and_stable(tmp_path):
    names = [f'{i:03d}.png' for i in range(200)]
    write_images(tmp_path, names)

    def split(which, fraction=0.2):
        return set(
            _paths(
                UnlabeledImages(
                    data_root=str(tmp_path),
                    split=which,
                    heldout_fraction=fraction,
                    heldout_seed=3)))

    train, heldout = split('train'), split('heldout')
    assert not train & heldout
    assert train | heldout == set(_paths(UnlabeledImages(str(tmp_path))))
    # The draw of each image, independently recomputed.
    expected = {
        str(tmp_path / n)
        for n in names if heldout_draw(n, 3) < 0.2
    }
    assert heldout == expected and 20 <= len(heldout) <= 60
    # A larger fraction holds out a superset; new images move nothing.
    assert heldout <= split('heldout', 0.4)
    write_images(tmp_path, ['new/1.png', 'new/2.png'])
    assert split('heldout') - {str(tmp_path / 'new/1.png'),
                               str(tmp_path / 'new/2.png')} == heldout


def test_heldout_draw_is_uniform_and_seeded():
    draws = [heldout_draw(f'{i}.png', 0) for i in range(2000)]
    assert all(0 <= d < 1 for d in draws)
    assert abs(sum(d < 0.25 for d in draws) / 2000 - 0.25) < 0.04
    assert heldout_draw('a.png', 0) != heldout_draw('a.png', 1)


def test_split_arguments_are_checked(tmp_path):
    write_images(tmp_path, ['a.png'])
    with pytest.raises(ValueError, match='needs heldout_fraction > 0'):
        UnlabeledImages(data_root=str(tmp_path), split='heldout')
    with pytest.raises(ValueError, match=r'heldout_fraction must be in'):
        UnlabeledImages(data_root=str(tmp_path), heldout_fraction=1.0)
    with pytest.raises(ValueError, match="'heldout' split of .* is empty"):
        UnlabeledImages(
            data_root=str(tmp_path), split='heldout', heldout_fraction=1e-9)
    assert osp.isdir(tmp_path)
