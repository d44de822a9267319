"""Class names from a list, a .txt or a .json file, checked."""
import json

import pytest

from mmpromptkd.datasets.class_names import read_class_names


def test_list_txt_and_json_give_the_same_names(tmp_path):
    names = ['red circle', 'blue square', 'green_triangle']
    (tmp_path / 'c.txt').write_text('\n'.join(names) + '\n\n')
    (tmp_path / 'c.json').write_text(json.dumps(names))
    assert read_class_names(names) == tuple(names)
    assert read_class_names(str(tmp_path / 'c.txt')) == tuple(names)
    assert read_class_names(str(tmp_path / 'c.json')) == tuple(names)


def test_windows_line_endings(tmp_path):
    (tmp_path / 'c.txt').write_bytes(b'a\r\nb\r\n')
    assert read_class_names(str(tmp_path / 'c.txt')) == ('a', 'b')


@pytest.mark.parametrize('text, match', [
    ('a\n\nb\n', r'c\.txt, line 2: blank class name'),
    ('a\nb\na\n', r"'a' at line 1, line 3"),
    ('a\n b\n', r"line 2: class name ' b' starts or ends with whitespace"),
    ('\n\n', 'names no class'),
])
def test_bad_txt_files_name_the_line(tmp_path, text, match):
    path = tmp_path / 'c.txt'
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_class_names(str(path))


def test_bad_json_and_paths(tmp_path):
    (tmp_path / 'd.json').write_text('{"a": 1}')
    with pytest.raises(ValueError, match='top level is a dict'):
        read_class_names(str(tmp_path / 'd.json'))
    (tmp_path / 'n.json').write_text('["a", 3]')
    with pytest.raises(ValueError, match='entry 1: class names must be'):
        read_class_names(str(tmp_path / 'n.json'))
    with pytest.raises(FileNotFoundError, match='missing.txt not found'):
        read_class_names(str(tmp_path / 'missing.txt'))
    with pytest.raises(ValueError, match='expected a .txt or .json'):
        read_class_names(str(tmp_path / 'c.csv'))
    with pytest.raises(ValueError, match=r"'x' at entry 0, entry 1"):
        read_class_names(['x', 'x'])


@pytest.mark.parametrize('text, at', [
    ('red circle\nred\u00a0circle\n', 'line 2'),       # no-break space
    ('red circle\nred\u200b circle\n', 'line 2'),      # zero-width space
    ('caf\u00e9\ncafe\u0301\n', 'line 2'),             # composed or not
])
def test_names_clip_reads_alike_are_repeated(tmp_path, text, at):
    path = tmp_path / 'classes.txt'
    path.write_text(text, encoding='utf-8')
    with pytest.raises(ValueError, match=f'more than once.*{at}'):
        read_class_names(str(path))


def test_a_byte_order_mark_is_no_part_of_a_name(tmp_path):
    path = tmp_path / 'classes.txt'
    path.write_bytes('\ufeffred circle\nblue square\n'.encode('utf-8'))
    assert read_class_names(str(path)) == ('red circle', 'blue square')


def test_a_non_utf8_file_is_named(tmp_path):
    path = tmp_path / 'classes.txt'
    path.write_bytes('caf\u00e9\n'.encode('latin-1'))
    with pytest.raises(ValueError, match='classes.txt is not UTF-8'):
        read_class_names(str(path))


def test_a_coop_split_with_one_name_for_two_labels(tmp_path):
    from mmpromptkd.datasets import CoOpDataset
    root = tmp_path / 'd'
    (root / 'images').mkdir(parents=True)
    split = {s: [['a.png', 0, 'red circle'], ['b.png', 1, 'red\u00a0circle']]
             for s in ('train', 'val', 'test')}
    (root / 'split.json').write_text(json.dumps(split))
    with pytest.raises(ValueError, match='labels 0, 1'):
        CoOpDataset(data_root=str(tmp_path), dataset_dir='d',
                    image_dir='images', split_file='split.json')


def test_the_distiller_refuses_names_clip_reads_alike():
    from mmpromptkd.models.distillers.class_text_table import \
        ClassTextTable
    with pytest.raises(ValueError, match='more than once'):
        ClassTextTable._check_new_names(['red circle', 'red\u00a0circle'])
    assert ClassTextTable._check_new_names(['red\u00a0circle']) == \
        ('red circle', )
