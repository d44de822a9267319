"""Rows of the synthetic base-to-novel benchmark and the config of each run
(``benchmarks/synthetic_b2n.py`` runs them)."""
import argparse
import copy
import os.path as osp
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

from ..common import REPO_ROOT

TEACHER_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'promptsrc',
    'promptsrc_tiny-clip_1xb32-16shot-5e_b2n-synthetic-shapes.py')
DISTILLER_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'promptkd',
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py')


class RowSpec(NamedTuple):
    """How one row of the table is produced.

    Attributes:
        kind (str): ``'zero_shot'``, ``'promptsrc'`` or ``'distill'``.
        overrides (dict): Merged into the base config (``which``: the tiny
            CLIP of a zero-shot or PromptSRC row).
        student, teacher (str): Tiny CLIPs of a distillation row.
        stage_a (str): Row whose checkpoint is that teacher.
        members (tuple[tuple[str, str]]): Ensemble members' tiny CLIPs
            and stage-(a) rows (the first gives the text).
        teacher_scores (bool): Test the teacher's scores, not training.
    """
    label: str
    kind: str
    overrides: dict
    student: str = 'student'
    teacher: str = 'teacher'
    stage_a: str = 'teacher_promptsrc'
    members: tuple = ()
    teacher_scores: bool = False


def _distill(model: dict) -> dict:
    return dict(model=model)


def _feature(mode: str) -> dict:
    """A feature-distillation row's changes (L1 or MSE)."""
    return _distill(dict(distill_target='features', distill_loss=dict(
        _delete_=True, type='FeatureDistillLoss', mode=mode,
        loss_weight=1000.0)))


_R = RowSpec
ROWS: Dict[str, RowSpec] = dict(
    student_zs=_R('Student zero-shot CLIP', 'zero_shot',
                  dict(which='student')),
    teacher_zs=_R('Teacher zero-shot CLIP', 'zero_shot',
                  dict(which='teacher')),
    teacher_promptsrc=_R('Teacher PromptSRC (stage a)', 'promptsrc',
                         dict(which='teacher')),
    student_labels=_R('Student PromptSRC with labels', 'promptsrc',
                      dict(which='student')),
    promptkd=_R('PromptKD student', 'distill', {}),
    projector_only=_R('PromptKD: projector only', 'distill', _distill(
        dict(student=dict(vision_prompt_depth=0)))),
    full_finetune=_R('PromptKD: full fine-tune', 'distill', _distill(
        dict(student=dict(vision_prompt_depth=0, freeze_clip=False)))),
    wo_shared_text=_R('PromptKD: w/o shared text features', 'distill',
                      _distill(dict(student=dict(text_prompt_depth=3,
                                                 text_prompt_length=4),
                                    shared_text_features=False,
                                    projector=None))),
    feature_l1=_R('PromptKD: feature L1', 'distill', _feature('l1')),
    feature_mse=_R('PromptKD: feature MSE', 'distill', _feature('mse')),
    # A second CLIP family (a timm tower, sigmoid loss) on either side.
    siglip_zs=_R('SigLIP-style zero-shot', 'zero_shot', dict(which='siglip')),
    siglip_promptsrc=_R('SigLIP-style PromptSRC (stage a)', 'promptsrc',
                        dict(which='siglip')),
    siglip_teacher=_R('PromptKD: SigLIP-style teacher -> CLIP student',
                      'distill', {}, teacher='siglip',
                      stage_a='siglip_promptsrc'),
    siglip_student=_R('PromptKD: CLIP teacher -> SigLIP-style student',
                      'distill', {}, student='siglip'))
# Ensembles of the CLIP and the SigLIP-style stage-(a) teachers.
for _key, _words, _options in (
        ('equal', 'equal weights', dict(weighting='equal')),
        ('confidence', 'confidence weights',
         dict(weighting='confidence', confidence='max_prob'))):
    for _suffix, _label, _scores in (
            ('_teacher', f'Teacher ensemble, {_words} (its own scores)', True),
            ('', f'PromptKD: teacher ensemble, {_words} -> CLIP student',
             False)):
        ROWS[f'ensemble_{_key}{_suffix}'] = _R(
            _label, 'distill', _distill(dict(teacher=_options)),
            members=(('teacher', 'teacher_promptsrc'),
                     ('siglip', 'siglip_promptsrc')),
            teacher_scores=_scores)
#: Rows with the second family, run when asked for (``--rows``).
CROSS_FAMILY_ROWS = tuple(k for k in ROWS if k.startswith(('siglip_',
                                                           'ensemble_')))
#: Rows whose checkpoints are the teachers of distillation rows.
STAGE_A_ROWS = tuple(key for key in ROWS if key in {spec.stage_a for spec in
                                                    ROWS.values()}
                     | {row for spec in ROWS.values()
                        for _, row in spec.members})


def stage_a_rows(key: str) -> Tuple[str, ...]:
    """The stage-(a) rows whose checkpoints a distillation row needs."""
    spec = ROWS[key]
    return tuple(row for _, row in spec.members) or (spec.stage_a, )


def set_epochs(cfg, max_epochs: int) -> None:
    """Set the epochs of a config's schedule (warm-up epoch + cosine)."""
    cfg.train_cfg.max_epochs = max_epochs
    if cfg.get('default_hooks', {}).get('checkpoint'):
        # Only the last checkpoint is needed.
        cfg.default_hooks.checkpoint.interval = max_epochs
    for sched in cfg.param_scheduler:
        if sched['type'] == 'CosineAnnealingLR':
            sched['T_max'] = max_epochs
            # Dassl's cosine starts after the warm-up epoch (begin=1).
            sched['end'] = sched.get('begin', 0) + max_epochs
    cfg.custom_hooks = copy.deepcopy(cfg.custom_hooks)
    for hook in cfg.custom_hooks:
        if hook.get('type') == 'GaussianPromptAggregationHook':
            # The aggregation's peak on the last-but-one epoch.
            hook['mean'] = float(max(max_epochs - 1, 1))


def _clip(base, which: str, args) -> dict:
    """The tiny CLIP ``which`` (pre-trained unless ``--random-weights``)."""
    return dict(model_cfg=copy.deepcopy(base[f'tiny_{which}_clip']),
                quick_gelu=True, checkpoint=None if args.random_weights else
                osp.normpath(base[f'tiny_{which}_clip_checkpoint']))


def build_row_config(key: str, args: argparse.Namespace, data: str,
                     seed: int,
                     teacher_ckpt: Optional[Union[str, Sequence[str]]] = None):
    """The config of a run of row ``key`` (``teacher_ckpt``: stage-(a)
    checkpoint(s); ``seed`` also samples the shots)."""
    from mmengine.config import Config

    from run_cli import CfgOptionsAction

    spec = ROWS[key]
    base = Config.fromfile(DISTILLER_CONFIG)  # holds the tiny CLIP dicts
    if spec.kind in ('zero_shot', 'promptsrc'):
        cfg = Config.fromfile(TEACHER_CONFIG)
        clip = _clip(base, spec.overrides['which'], args)
        if spec.kind == 'zero_shot':
            cfg.model = dict(type='ZeroShotCLIPClassifier',
                             _scope_='mmpromptkd', clip=clip,
                             template='a photo of a {}.')
        else:
            cfg.model.clip = clip
            cfg.train_dataloader.dataset.num_shots = args.shots
            cfg.train_dataloader.dataset.seed = seed
            if args.teacher_epochs is not None:
                set_epochs(cfg, args.teacher_epochs)
    else:
        cfg = base
        for role, which in (('student', spec.student),
                            ('teacher', spec.teacher)):
            clip = _clip(base, which, args)
            cfg.model[role].clip.model_cfg = clip['model_cfg']
            cfg.model[role].clip.checkpoint = clip['checkpoint']
        cfg.model.teacher.checkpoint = teacher_ckpt
        if spec.members:
            # The distillation config's prompted teacher on each member's
            # tiny CLIP and stage-(a) checkpoint.
            teacher = cfg.model.teacher.to_dict()
            cfg.model.teacher = dict(type='TeacherEnsemble', members=[
                dict(teacher=dict(copy.deepcopy(teacher),
                                  clip=_clip(base, which, args),
                                  checkpoint=checkpoint))
                for (which, _), checkpoint in zip(spec.members, teacher_ckpt)
            ])
        if spec.teacher_scores:
            # The teacher's own accuracy: its scores on the test split.
            cfg.model.predict_teacher = True
            cfg.test_evaluator = dict(type='BaseNovelAccuracy',
                                      score_key='teacher_score')
        cfg.merge_from_dict(copy.deepcopy(spec.overrides))
        if args.student_epochs is not None:
            set_epochs(cfg, args.student_epochs)
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = data
    cfg.randomness = dict(seed=seed, deterministic=False)
    # No validation during training (not even after the last epoch): only
    # the final test is reported.
    cfg.train_cfg.val_begin = 10**6
    cfg.train_cfg.val_interval = 10**6
    # Only the last checkpoint is needed.
    cfg.default_hooks.checkpoint.interval = cfg.train_cfg.max_epochs
    cfg.default_hooks.logger.interval = 50
    if args.cfg_options:
        options = argparse.Namespace()
        CfgOptionsAction(
            option_strings=[], dest='o')(None, options, args.cfg_options)
        cfg.merge_from_dict(options.o)
    return cfg
