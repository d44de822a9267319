"""Export a trained PromptKD student for inference without the teacher.

``OUT`` with the suffix ``.py`` is a config for mmpretrain's inference API::

    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(
        'student.py', pretrained='mmpromptkd://student.pth')
    inferencer('image.jpg')[0]['pred_class']

(``mmpromptkd://`` reads the file with the package's safe loader, not
mmengine's plain ``torch.load``.)
"""
import argparse
import os.path as osp
import sys

_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [_REPO, osp.join(_REPO, 'tools', 'misc')]

from mmengine.config import Config  # noqa: E402

import mmpromptkd  # noqa: E402,F401
from mmpromptkd.apis import export_student  # noqa: E402
from mmpromptkd.registry import MODELS, TRANSFORMS  # noqa: E402
from mmpromptkd.models.utils import (FROZEN_WEIGHTS_META,  # noqa: E402
                                     check_frozen_weights)
from mmpromptkd.utils import load_from_local  # noqa: E402
from run_cli import (CfgOptionsAction, load_config,  # noqa: E402
                     merge_cfg_options, output_beside, reporting_run_errors)


def _scoped(transform: dict) -> dict:
    """``mmpromptkd.<name>`` for our transforms (mmpretrain's own scope)."""
    transform = dict(transform)
    name = transform.get('type')
    if isinstance(name, str) and '.' not in name and \
            name in TRANSFORMS.module_dict:
        transform['type'] = f'mmpromptkd.{name}'
    return transform


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config of the student')
    parser.add_argument('checkpoint', help='checkpoint written by training')
    parser.add_argument(
        'out', help='output file (.pth); the config is written beside it '
        'with the suffix .py')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing output file and config')
    parser.add_argument(
        '--with-text-encoder', action='store_true',
        help="also store the teacher's prompted text tower (not its image "
        'tower): the exported student then takes new class names')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override settings of the config')
    args = parser.parse_args(argv)
    try:
        config_path = output_beside(args.out, '.py', args.force)
    except ValueError as e:
        parser.error(f'{e} (e.g. .pth for the weights)')
    cfg = load_config(args.config, 'export_student.py')
    merge_cfg_options(cfg, args.cfg_options)
    checkpoint = load_from_local(args.checkpoint)
    state = checkpoint.get('state_dict', checkpoint)
    if 'text_features' not in state:
        raise ValueError(
            f'{args.checkpoint} holds no stored text features '
            "('text_features'): it is not a checkpoint of a PromptKD "
            'distiller trained with PromptKDTextFeaturesHook')
    # The stored text features replace the teacher, unless exported too.
    model_cfg = cfg.model.to_dict()
    standalone = dict(model_cfg)
    if not args.with_text_encoder:
        standalone['teacher'] = None
    if model_cfg.get('projector', {}) is not None:
        standalone['projector'] = dict(
            model_cfg.get('projector', dict(type='FeatureProjector')),
            out_channels=state['text_features'].shape[1])
    model = MODELS.build(standalone)
    # Training checkpoints hold no frozen weights: the config's must match.
    meta = checkpoint.get('meta') if 'state_dict' in checkpoint else None
    check_frozen_weights(model, (meta or {}).get(FROZEN_WEIGHTS_META),
                         args.checkpoint)
    model.load_state_dict(state, strict=True)
    pipeline = cfg.test_dataloader.dataset.pipeline
    student_cfg = export_student(
        model, model_cfg, args.out, overwrite=args.force,
        with_text_encoder=args.with_text_encoder, test_pipeline=pipeline)
    # A fresh process (mmpretrain's inferencer) imports the package, and the
    # default scope finds its transforms there.
    Config(dict(
        custom_imports=dict(imports=['mmpromptkd'],
                            allow_failed_imports=False),
        default_scope='mmpromptkd',
        model=student_cfg,
        test_dataloader=dict(dataset=dict(
            pipeline=[_scoped(t) for t in pipeline])))).dump(config_path)
    kind = ', open-vocabulary' if args.with_text_encoder else ''
    print(f'exported the student ({len(model.class_names)} classes{kind}) '
          f'to {args.out}, with the config {config_path}')


if __name__ == '__main__':
    with reporting_run_errors(osp.basename(__file__)):
        main()
