"""FLOPs and parameters of a config's model, for inference or for training.

``model.extract_feat`` is counted, as mmpretrain's ``get_flops.py`` does.
"""
import argparse
import os.path as osp
import sys

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [_REPO, osp.join(_REPO, 'tools', 'misc')]

from mmengine.analysis import get_model_complexity_info  # noqa: E402
from mmpretrain.apis import get_model  # noqa: E402
from torch import nn  # noqa: E402

from run_cli import (CfgOptionsAction, load_config,  # noqa: E402
                     merge_cfg_options)


class CountedForward(nn.Module):
    """``model.extract_feat`` at ``stage``; with 'distill' the teacher,
    outside a distiller's module tree, is registered so its parameters count.
    """

    def __init__(self, model: nn.Module, stage: str = None) -> None:
        super().__init__()
        self.model = model
        self.kwargs = {} if stage is None else dict(stage=stage)
        if stage == 'distill':
            self.teacher = model.teacher

    def forward(self, inputs):
        return self.model.extract_feat(inputs, **self.kwargs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs='+',
        help='input size, H [W]; defaults to the image size of the student '
        '(or of the classifier)')
    parser.add_argument(
        '--stage', choices=['student', 'distill'], default='student',
        help='for a distiller: an inference (student) or the forward of a '
        'training step (distill: teacher and student)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override settings of the config, KEY=VALUE')
    args = parser.parse_args(argv)
    cfg = load_config(args.config, 'get_flops.py')
    merge_cfg_options(cfg, args.cfg_options)
    if cfg.model.get('teacher') is not None:
        # Operations do not depend on the prompts' values: a teacher
        # without its stage-(a) checkpoint counts the same.
        cfg.model.allow_untrained_teacher = True
    model = get_model(cfg)
    model.eval()
    if not hasattr(model, 'extract_feat'):
        parser.error(f'{type(model).__name__} has no extract_feat to count')
    is_distiller = hasattr(model, 'student_features')
    if is_distiller and args.stage == 'distill' and model.teacher is None:
        parser.error('--stage distill needs the teacher in model.teacher')

    if args.shape is None:
        owner = model.student if is_distiller else model
        size = tuple(getattr(owner, 'image_size', (224, 224)))
    elif len(args.shape) in (1, 2):
        size = tuple(args.shape) * (3 - len(args.shape))
    else:
        parser.error(f'--shape takes H or H W, got {args.shape}')
    counted = CountedForward(model, args.stage if is_distiller else None)
    result = get_model_complexity_info(counted, input_shape=(3, ) + size)
    what = 'image features' if not is_distiller else dict(
        student='an inference: student and projector',
        distill='a training step forward: teacher and student')[args.stage]
    print(result['out_table'])
    print(f'{type(model).__name__}, {what}\n'
          f'Input shape: {(3, ) + size}\n'
          f'Flops: {result["flops_str"]}  ({result["flops"]})\n'
          f'Params: {result["params_str"]}  ({result["params"]})')


if __name__ == '__main__':
    main()
