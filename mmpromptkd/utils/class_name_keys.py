"""When two class names are the same class to CLIP's text encoder, whose
tokenizer ignores Unicode form, zero-width characters and extra whitespace."""
import re
import unicodedata
from collections import defaultdict
from typing import Dict, List, Sequence

_INVISIBLE = re.compile('[\u200b\u200c\u200d\u2060\ufeff]')


def normalize_class_name(name: str) -> str:
    """A class name as CLIP reads it: Unicode NFKC, no zero-width
    characters or byte-order mark, whitespace collapsed to single spaces."""
    name = _INVISIBLE.sub('', unicodedata.normalize('NFKC', name))
    return ' '.join(name.split())


def repeated_class_names(names: Sequence[str]) -> Dict[str, List[int]]:
    """Normalised name -> positions in ``names``, for every name at more
    than one position."""
    positions = defaultdict(list)
    for i, name in enumerate(names):
        positions[normalize_class_name(name)].append(i)
    return {k: v for k, v in positions.items() if len(v) > 1}
