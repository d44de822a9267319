"""Memory of the real-size training steps, stage (a) and stage (b).

docs/performance.md has the method and the figures."""
import time
from typing import List, Sequence

import torch

from benchmarks.cases.training import saved_tensor_meter
from benchmarks.common import (arch_clips, arg_parser, class_names,
                               markdown_table, write_json)

GIB = 2**30


def _prompted(model_cfg: dict, text: bool):
    """A tower pair with the paper's prompts (depth 9, 4 tokens)."""
    from mmpromptkd.models.clip import PromptedCLIP
    return PromptedCLIP(
        clip=dict(model_cfg=model_cfg, quick_gelu=True),
        vision_prompt_depth=9, vision_prompt_length=4,
        text_prompt_depth=9 if text else 0, text_prompt_length=4,
        text_tower=text)


def _saved(model, run, checkpointing: bool) -> int:
    """Bytes saved for backward by ``run()`` in training mode."""
    model.train()
    model.grad_checkpointing = checkpointing
    owned = list(model.parameters()) + list(model.buffers())
    with torch.enable_grad(), saved_tensor_meter(owned) as meter:
        run()
    return meter['bytes']


def _with_longest(names: Sequence[str], size: int, tokenizer) -> List[str]:
    """``size`` names of ``names`` that include its longest (in tokens)."""
    longest = max(names, key=lambda n: len(tokenizer.encode(n)))
    return [longest] + [n for n in names if n != longest][:size - 1]


def text_saved(model, names: Sequence[str], checkpointing: bool,
               truncate: bool, sizes=(16, 32)) -> float:
    """Saved bytes of the text tower for all ``names``, extended linearly
    from two subsets of ``sizes`` names."""
    model.truncate_text = truncate
    measured = []
    for size in sizes:
        subset = _with_longest(names, size, model.tokenizer)
        measured.append(_saved(model, lambda: model.encode_text(subset),
                               checkpointing))
    slope = (measured[1] - measured[0]) / (sizes[1] - sizes[0])
    return slope * len(names) + measured[0] - slope * sizes[0]


def _bytes(*models, trained: bool = False) -> int:
    """Weight bytes, or gradient and SGD momentum bytes (``trained``)."""
    return sum(p.numel() * p.element_size() * (1 + trained)
               for m in models for p in m.parameters()
               if p.requires_grad or not trained)


def stage_a(teacher, classes: int, batch: int) -> List[dict]:
    """Rows of the PromptSRC teacher's step with ``classes`` classes."""
    names = class_names(classes)
    images = torch.randn(batch, 3, 224, 224)
    rows = []
    for ckpt in (False, True):
        image = _saved(teacher, lambda: teacher.encode_image(images), ckpt)
        row = dict(stage='a', classes=classes, checkpointing=ckpt,
                   weights=_bytes(teacher),
                   trained=_bytes(teacher, trained=True), image=image,
                   text=text_saved(teacher, names, ckpt, truncate=True))
        # The official code has no gradient checkpointing.
        row['official'] = None if ckpt else (
            row['weights'] + row['trained'] + image +
            text_saved(teacher, names, ckpt, truncate=False)) / 2
        rows.append(row)
    return rows


def stage_b(student, teacher_weights: int, classes: int,
            batch: int) -> List[dict]:
    """Rows of the distillation step, online and on a teacher cache."""
    images = torch.randn(batch, 3, 224, 224)
    projector = (768 * 512 + 512 * 768) * 4  # ViT-B/16 -> ViT-L/14 space
    stored = classes * 768 * 4  # the teacher's text features
    rows = []
    for ckpt in (False, True):
        image = _saved(student, lambda: student.encode_image(images), ckpt)
        for source, teacher in (('online', teacher_weights), ('cache', 0)):
            weights = _bytes(student) + teacher + stored + projector
            trained = _bytes(student, trained=True) + 2 * projector
            rows.append(dict(
                stage=f'b ({source})', classes=classes, checkpointing=ckpt,
                weights=weights, trained=trained, image=image, text=0,
                official=(weights + trained + image) / 2
                if source == 'online' and not ckpt else None))
    return rows


def main(argv=None) -> int:
    parser = arg_parser(__doc__, batch_size=8, out=None)
    parser.add_argument('--classes', type=int, nargs='+', default=[500, 1000],
                        help='class counts of stage (a) (ImageNet base 500 '
                        'and all 1,000)')
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    start = time.time()
    spec = arch_clips('real')
    teacher = _prompted(spec['teacher'], text=True)
    teacher_image = _bytes(teacher.clip.visual)
    rows = []
    for classes in args.classes:
        rows += stage_a(teacher, classes, args.batch_size)
    del teacher
    # Stage (b) keeps the teacher's image tower (its text tower is released
    # once the features are stored, release_teacher_text_tower=True) and
    # the teacher's vision prompts.
    rows += stage_b(_prompted(spec['student'], text=False), teacher_image,
                    max(args.classes), args.batch_size)
    cells = []
    for row in rows:
        row['peak'] = row['weights'] + row['trained'] + row['image'] + \
            row['text']
        cells.append([
            row['stage'], row['classes'],
            'on' if row['checkpointing'] else 'off',
            f'{row["weights"] / GIB:.2f}', f'{row["trained"] / 2**20:.1f}',
            f'{(row["image"] + row["text"]) / GIB:.2f} '
            f'({row["image"] / GIB:.2f} + {row["text"] / GIB:.2f})',
            f'{row["peak"] / GIB:.1f}',
            '-' if row['official'] is None else f'{row["official"] / GIB:.1f}'
        ])
    print(markdown_table([
        'stage', 'classes', 'grad. checkpointing', 'weights GiB',
        'grads + SGD MiB', 'saved activations GiB (image + text)',
        'estimated peak GiB', 'official code (fp16, 77 tokens) GiB'], cells))
    print(f'batch {args.batch_size}, fp32, {time.time() - start:.0f} s')
    write_json(args.out, rows, indent=1)
    return 0
