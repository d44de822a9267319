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
