"""Convert released PromptSRC/PromptKD checkpoints for mmpromptkd.

Teacher (``teacher_model/<Dataset>/VLPromptLearner/model-best.pth.tar``)::

    python tools/model_converters/promptkd_official_to_mmpromptkd.py \
        teacher model-best.pth.tar teacher_dtd.pth --openai-clip ViT-L-14.pt

Student::

    python tools/model_converters/promptkd_official_to_mmpromptkd.py \
        student model-best.pth.tar student_dtd.pth

Loading is safe (no arbitrary unpickling). The tool prints every key it
maps and refuses keys it cannot account for. It never overwrites an
existing output file unless ``--force`` is given.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '../..')))

from mmpromptkd.converters import (convert_official_student,  # noqa: E402
                                   convert_official_teacher)
from mmpromptkd.utils import (load_checkpoint_file,  # noqa: E402
                              save_checkpoint_file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('kind', choices=['teacher', 'student'])
    parser.add_argument('src', help='official checkpoint file')
    parser.add_argument('dst', help='output file')
    parser.add_argument(
        '--openai-clip',
        help='OpenAI CLIP file the teacher was trained from (ViT-L-14.pt); '
        'it supplies the token embedding')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing output file')
    parser.add_argument('--quiet', action='store_true',
                        help='do not print the key mapping')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if osp.exists(args.dst) and not args.force:
        sys.exit(f'{args.dst} exists; pass --force to overwrite it')
    checkpoint = load_checkpoint_file(args.src)
    if args.kind == 'teacher':
        if not args.openai_clip:
            sys.exit('--openai-clip is required for a teacher: the token '
                     'embedding comes from the OpenAI CLIP file')
        openai_state = load_checkpoint_file(args.openai_clip)
        converted, mapping = convert_official_teacher(
            checkpoint, openai_state, args.src)
    else:
        converted, mapping = convert_official_student(checkpoint, args.src)
    if not args.quiet:
        for old, new in mapping:
            print(f'{old} -> {new}')
    save_checkpoint_file(converted, args.dst, overwrite=args.force)
    print(f'converted {len(mapping)} tensors into {args.dst}; '
          f'meta: {converted["meta"]}')
    if args.kind == 'teacher':
        meta = converted['meta']
        # The official code builds every teacher with depth 9 and loads it
        # non-strictly; our configs must name the depth the file has.
        print('prompt depths found: '
              f'vision {meta["vision_prompt_depth"]}, text '
              f'{meta["text_prompt_depth"]}; the teacher config needs '
              f'model.teacher.vision_prompt_depth='
              f'{meta["vision_prompt_depth"]} '
              f'model.teacher.text_prompt_depth={meta["text_prompt_depth"]}')


if __name__ == '__main__':
    main()
