"""Output files of the export tools: a main file and one beside it."""
import os.path as osp

__all__ = ['output_beside']


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
            exists and ``force`` is False; the message names them.
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
