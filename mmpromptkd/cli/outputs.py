"""Output files of the export tools: a main file and one beside it."""
import os.path as osp

__all__ = ['new_output', 'output_beside']


def output_beside(out: str, suffix: str, force: bool) -> str:
    """The path written beside ``out`` (same name, ``suffix``), checked.

    Args:
        out (str): The main output file.
        suffix (str): Suffix of the file beside it, e.g. '.py' or '.json'.
        force (bool): Whether existing outputs may be replaced.

    Returns:
        str: The path beside ``out``.

    Raises:
        ValueError: If both would be the same file, or if one of them
            exists and ``force`` is False.
    """
    beside = osp.splitext(out)[0] + suffix
    if beside == out:
        raise ValueError(f'out={out}: the output and its {suffix} file '
                         'would be the same file; give the output another '
                         'suffix')
    existing = [p for p in (out, beside) if osp.exists(p)]
    if existing and not force:
        raise ValueError(f'{" and ".join(existing)} exist(s); refusing to '
                         'overwrite (pass --force to replace)')
    return beside


def new_output(out: str, force: bool, inputs=()) -> str:
    """Check that writing ``out`` loses nothing.

    Args:
        out (str): The output file a tool is asked to write.
        force (bool): Whether an existing output may be replaced.
        inputs (Sequence[str]): The tool's input files, never replaced.

    Returns:
        str: ``out``.

    Raises:
        ValueError: If ``out`` is one of the inputs, or exists and ``force``
            is False.
    """
    for path in inputs:
        if osp.exists(path) and osp.exists(out) and osp.samefile(path, out):
            raise ValueError(f'--out {out} is the input {path}; refusing to '
                             'overwrite it')
    if osp.exists(out) and not force:
        raise ValueError(f'{out} exists; refusing to overwrite it (pass '
                         '--force to replace it)')
    return out
