"""Which open_clip model configurations PromptedCLIP builds, and how.

Each is built scaled down with random weights; :data:`HEADER` explains.
"""
import argparse
import atexit
import functools
import os.path as osp
import shutil
import sys
import tempfile
from typing import Dict, List, Optional

# The shared helpers, scaled-down models and small tokenizers of tools/misc.
_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [_REPO, osp.join(_REPO, 'tools', 'misc')]

import open_clip  # noqa: E402
import torch  # noqa: E402

from mmpromptkd.fileio import atomic_write  # noqa: E402
from mmpromptkd.models.clip import PromptedCLIP  # noqa: E402
from run_cli import new_output  # noqa: E402
from scaled_open_clip import (quick_gelu_of, scaled_model_cfg,  # noqa: E402
                              small_timm_trunks)
from small_hf_tokenizer import (layout_of,  # noqa: E402
                                write_small_hf_tokenizer)

NAMES = ['dog', 'red car']
PARITY_TOLERANCE = 1e-5
COLUMNS = ('model', 'image tower', 'visual prompts', 'text prompts',
           'roles', 'parity')


def _relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    scale = theirs.abs().max().clamp_min(1e-30)
    return float(((ours - theirs).abs().max() / scale))


def _build(source: dict, **kwargs) -> PromptedCLIP:
    with small_timm_trunks():
        return PromptedCLIP(clip=source, **kwargs)


@functools.lru_cache(maxsize=None)
def _stand_in_tokenizer(layout: str) -> str:
    folder = tempfile.mkdtemp(prefix=f'tokenizer-{layout}-')
    atexit.register(shutil.rmtree, folder, True)
    return write_small_hf_tokenizer(folder, layout)


def coverage_row(name: str) -> Dict[str, str]:
    """The table row of one open_clip model configuration."""
    torch.manual_seed(0)
    model_cfg = scaled_model_cfg(name)
    text_cfg = model_cfg.get('text_cfg', {})
    hf_tokenizer = text_cfg.get('hf_tokenizer_name')
    if hf_tokenizer:
        text_cfg['hf_tokenizer_name'] = _stand_in_tokenizer(
            layout_of(hf_tokenizer))
    source = dict(model_cfg=model_cfg, quick_gelu=quick_gelu_of(name))
    row = dict(model=name, **{
        'text prompts': f'yes (tokenizer {hf_tokenizer})'
        if hf_tokenizer else 'yes',
        'roles': 'teacher, student'
    })
    try:
        model = _build(source)
    except ValueError as e:
        row.update({'text prompts': f'no: {_first_clause(e)}',
                    'roles': 'student'})
        try:
            model = _build(source, text_tower=False)
        except ValueError as e:
            return dict(row, **{'image tower': '-', 'visual prompts': '-',
                                'text prompts': '-', 'roles': 'none',
                                'parity': f'refused: {_first_clause(e)}'})
    tower = model.vision_tower
    trunk = getattr(tower.visual, 'trunk', tower.visual)
    row['image tower'] = type(trunk).__name__
    row['visual prompts'] = 'yes' if tower.takes_prompts else \
        f'no: {tower.no_prompts_reason}'
    images = torch.randn(1, 3, *model.image_size)
    with torch.no_grad():
        differences = [
            _relative_difference(model.encode_image(images),
                                 model.clip.encode_image(images))
        ]
        if model.has_text_tower:
            differences.append(
                _relative_difference(
                    model.encode_text(NAMES),
                    model.clip.encode_text(model.tokenize(NAMES))))
    worst = max(differences)
    row['parity'] = 'ok' if worst < PARITY_TOLERANCE else f'{worst:.1e}'
    return row


def _first_clause(error: Exception) -> str:
    text = str(error).replace('|', '/')
    return text.split(';')[0].removeprefix('clip: ')


HEADER = """# open_clip models in PromptedCLIP

Every model configuration of open_clip {version}, built by `PromptedCLIP`
at a scaled-down size (2 transformer blocks of width 64, or the smallest
convolutional stages; the real tower classes, pooling, positions and image
size) with random weights. *visual prompts*: whether deep visual prompts
enter the image tower; *text prompts*: whether the text tower takes
learnable context (a prompted or zero-shot teacher needs it; a student
needs the image tower only; a Hugging Face tokenizer named here is read
from the local cache, and built here as a small stand-in of its layout);
*parity*: at prompt depth 0, `encode_image` and `encode_text` against
open_clip's own, relative to the largest feature (`ok`: below 1e-5).
Regenerate with

    python tools/analysis/open_clip_coverage.py \\
        --out docs/open_clip_coverage.md --force

(`tests/test_tools/test_open_clip_coverage.py` builds every row again and
compares it with this file.)

"""


def coverage_document(names: Optional[List[str]] = None) -> str:
    """The Markdown page of ``names`` (every open_clip model by default)."""
    rows = [dict(zip(COLUMNS, COLUMNS))]
    rows += [coverage_row(n) for n in names or open_clip.list_models()]
    lines = ['| ' + ' | '.join(r[c] for c in COLUMNS) + ' |' for r in rows]
    lines.insert(1, '|' + '---|' * len(COLUMNS))
    return HEADER.format(version=open_clip.__version__) + '\n'.join(
        lines) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='write the table to this file')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing --out file')
    parser.add_argument('--models', nargs='+',
                        help='open_clip model names (default: all)')
    args = parser.parse_args(argv)
    if args.out:
        try:  # before minutes of building: nothing of the user's is lost
            new_output(args.out, args.force)
        except ValueError as e:
            raise SystemExit(f'--out: {e}') from None
    unknown = sorted(set(args.models or []) - set(open_clip.list_models()))
    if unknown:
        print(f'--models: unknown open_clip models {unknown}')
        return 1
    document = coverage_document(args.models)
    if args.out:
        atomic_write(document, args.out)
    print(document, end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
