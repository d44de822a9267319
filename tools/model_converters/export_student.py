"""Export a trained PromptKD student for inference without the teacher.

    python tools/model_converters/export_student.py CONFIG CHECKPOINT OUT

The output holds the student's weights and architecture, the projector and
the teacher's stored text features with their class names; load it with
``mmpromptkd.apis.load_exported_student(OUT)``. No CLIP weight file and no
teacher is needed afterwards. A config ``OUT`` with the suffix ``.py`` is
written beside it for mmpretrain's inference API::

    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer('student.py',
                                               pretrained='student.pth')
    inferencer('image.jpg')[0]['pred_class']
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '../..')))

from mmengine.config import Config, DictAction  # noqa: E402

import mmpromptkd  # noqa: E402,F401
from mmpromptkd.apis import export_student  # noqa: E402
from mmpromptkd.registry import MODELS  # noqa: E402
from mmpromptkd.utils import load_checkpoint_file  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='training config of the student')
    parser.add_argument('checkpoint', help='checkpoint written by training')
    parser.add_argument('out', help='output file (never overwritten)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    state = load_checkpoint_file(args.checkpoint)
    state = state.get('state_dict', state)
    # The stored text features replace the teacher: build without it.
    model_cfg = cfg.model.to_dict()
    standalone = dict(model_cfg, teacher=None)
    standalone['projector'] = dict(
        model_cfg.get('projector', dict(type='FeatureProjector')),
        out_channels=state['text_features'].shape[1])
    model = MODELS.build(standalone)
    model.load_state_dict(state, strict=True)
    config_path = osp.splitext(args.out)[0] + '.py'
    if osp.exists(config_path):
        sys.exit(f'{config_path} exists; refusing to overwrite it')
    student_cfg = export_student(model, model_cfg, args.out)
    Config(
        dict(
            default_scope='mmpromptkd',
            model=student_cfg,
            test_dataloader=dict(
                dataset=dict(pipeline=cfg.test_dataloader.dataset.pipeline))
        )).dump(config_path)
    print(f'exported the student ({len(model.class_names)} classes) to '
          f'{args.out}, with the config {config_path}')


if __name__ == '__main__':
    main()
