"""Rows of the synthetic base-to-novel benchmark and the config of each run.

See ``benchmarks/synthetic_b2n.py`` for the table of rows and how they run.
"""
import argparse
import copy
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TEACHER_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'promptsrc',
    'promptsrc_tiny-clip_1xb32-16shot-5e_b2n-synthetic-shapes.py')
DISTILLER_CONFIG = osp.join(
    REPO_ROOT, 'configs', 'promptkd',
    'promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py')
TEMPLATE = 'a photo of a {}.'


class RowSpec(NamedTuple):
    """How one row of the table is produced.

    Attributes:
        label (str): Row name in the table.
        kind (str): ``'zero_shot'``, ``'promptsrc'`` or ``'distill'``.
        overrides (dict): Merged into the row's base config; ``which``
            names the tiny CLIP of a zero-shot or PromptSRC row.
        student (str): Tiny CLIP of a distillation row's student
            (``tiny_<student>_clip`` of the model base config).
        teacher (str): Tiny CLIP of a distillation row's teacher.
        stage_a (str): Row whose checkpoint is that teacher.
        members (tuple[tuple[str, str]]): For a teacher ensemble, its
            members' tiny CLIPs and stage-(a) rows, in order (the first
            gives the student's text features).
        teacher_scores (bool): Evaluate the teacher's scores (of the
            distillation config, untrained student) instead of training.
    """
    label: str
    kind: str
    overrides: dict
    student: str = 'student'
    teacher: str = 'teacher'
    stage_a: str = 'teacher_promptsrc'
    members: tuple = ()
    teacher_scores: bool = False


def _feature_distillation(mode: str) -> dict:
    """Config changes of a feature-distillation row (L1 or MSE)."""
    return dict(
        model=dict(
            distill_target='features',
            distill_loss=dict(
                _delete_=True,
                type='FeatureDistillLoss',
                mode=mode,
                loss_weight=1000.0)))


ROWS: Dict[str, RowSpec] = {
    'student_zs':
    RowSpec('Student zero-shot CLIP', 'zero_shot', dict(which='student')),
    'teacher_zs':
    RowSpec('Teacher zero-shot CLIP', 'zero_shot', dict(which='teacher')),
    'teacher_promptsrc':
    RowSpec('Teacher PromptSRC (stage a)', 'promptsrc', dict(which='teacher')),
    'student_labels':
    RowSpec('Student PromptSRC with labels', 'promptsrc',
            dict(which='student')),
    'promptkd':
    RowSpec('PromptKD student', 'distill', {}),
    'projector_only':
    RowSpec('PromptKD: projector only', 'distill',
            dict(model=dict(student=dict(vision_prompt_depth=0)))),
    'full_finetune':
    RowSpec(
        'PromptKD: full fine-tune', 'distill',
        dict(
            model=dict(
                student=dict(vision_prompt_depth=0, freeze_clip=False)))),
    'wo_shared_text':
    RowSpec(
        'PromptKD: w/o shared text features', 'distill',
        dict(
            model=dict(
                student=dict(text_prompt_depth=3, text_prompt_length=4),
                shared_text_features=False,
                projector=None))),
    'feature_l1':
    RowSpec('PromptKD: feature L1', 'distill', _feature_distillation('l1')),
    'feature_mse':
    RowSpec('PromptKD: feature MSE', 'distill', _feature_distillation('mse')),
    # A second CLIP family (a timm tower, sigmoid loss) on either side.
    'siglip_zs':
    RowSpec('SigLIP-style zero-shot', 'zero_shot', dict(which='siglip')),
    'siglip_promptsrc':
    RowSpec('SigLIP-style PromptSRC (stage a)', 'promptsrc',
            dict(which='siglip')),
    'siglip_teacher':
    RowSpec('PromptKD: SigLIP-style teacher -> CLIP student', 'distill', {},
            teacher='siglip', stage_a='siglip_promptsrc'),
    'siglip_student':
    RowSpec('PromptKD: CLIP teacher -> SigLIP-style student', 'distill', {},
            student='siglip'),
}
#: Ensembles of the CLIP and the SigLIP-style stage-(a) teachers.
_ENSEMBLE = (('teacher', 'teacher_promptsrc'), ('siglip', 'siglip_promptsrc'))
_WEIGHTINGS = dict(
    equal=('equal weights', dict(weighting='equal')),
    confidence=('confidence weights',
                dict(weighting='confidence', confidence='max_prob')))
for _key, (_words, _options) in _WEIGHTINGS.items():
    ROWS[f'ensemble_{_key}_teacher'] = RowSpec(
        f'Teacher ensemble, {_words} (its own scores)', 'distill',
        dict(model=dict(teacher=_options)), members=_ENSEMBLE,
        teacher_scores=True)
    ROWS[f'ensemble_{_key}'] = RowSpec(
        f'PromptKD: teacher ensemble, {_words} -> CLIP student', 'distill',
        dict(model=dict(teacher=_options)), members=_ENSEMBLE)
#: Rows with the second family, run when asked for (``--rows``).
CROSS_FAMILY_ROWS = ('siglip_zs', 'siglip_promptsrc', 'siglip_teacher',
                     'siglip_student') + tuple(
                         k for k in ROWS if k.startswith('ensemble_'))
#: Rows whose checkpoints are the teachers of distillation rows.
STAGE_A_ROWS = tuple(key for key in ROWS if key in {spec.stage_a for spec in
                                                    ROWS.values()}
                     | {row for spec in ROWS.values()
                        for _, row in spec.members})


def stage_a_rows(key: str) -> Tuple[str, ...]:
    """The stage-(a) rows whose checkpoints a distillation row needs."""
    spec = ROWS[key]
    return tuple(row for _, row in spec.members) or (spec.stage_a, )


# Configs
def _gpa_hooks(hooks: List[dict], max_epochs: int) -> List[dict]:
    """Keep the aggregation's peak on the last-but-one epoch."""
    hooks = copy.deepcopy(hooks)
    for hook in hooks:
        if hook.get('type') == 'GaussianPromptAggregationHook':
            hook['mean'] = float(max(max_epochs - 1, 1))
    return hooks


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
    cfg.custom_hooks = _gpa_hooks(cfg.custom_hooks, max_epochs)


def _common(cfg, args: argparse.Namespace, data: str, seed: int) -> None:
    """Data, seed and run-time settings shared by every run."""
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


def _clip_checkpoint(base, which: str, random_weights: bool) -> Optional[str]:
    if random_weights:
        return None
    return osp.normpath(base[f'tiny_{which}_clip_checkpoint'])


def _ensemble(teacher, base, spec: RowSpec, checkpoints: Sequence[str],
              random_weights: bool) -> dict:
    """A TeacherEnsemble of the row's members: the distillation config's
    prompted teacher on each member's tiny CLIP and stage-(a) checkpoint."""
    members = []
    for (which, _), checkpoint in zip(spec.members, checkpoints):
        member = copy.deepcopy(teacher.to_dict())
        member['clip'] = dict(
            model_cfg=copy.deepcopy(base[f'tiny_{which}_clip']),
            quick_gelu=True,
            checkpoint=_clip_checkpoint(base, which, random_weights))
        member['checkpoint'] = checkpoint
        members.append(dict(teacher=member))
    return dict(type='TeacherEnsemble', members=members)


def build_row_config(key: str,
                     args: argparse.Namespace,
                     data: str,
                     seed: int,
                     teacher_ckpt: Optional[Union[str, Sequence[str]]] = None):
    """The full config of one run.

    Args:
        key (str): Row key.
        args (argparse.Namespace): Command-line arguments.
        data (str): Dataset folder.
        seed (int): Random seed (also the few-shot sampling seed).
        teacher_ckpt (str | Sequence[str], optional): Stage-(a)
            checkpoint (distill rows), one per member for an ensemble.

    Returns:
        mmengine.Config: The config.
    """
    from mmengine.config import Config

    from run_cli import CfgOptionsAction

    spec = ROWS[key]
    teacher_cfg = Config.fromfile(TEACHER_CONFIG)
    base = Config.fromfile(DISTILLER_CONFIG)  # holds the tiny CLIP dicts
    if spec.kind in ('zero_shot', 'promptsrc'):
        cfg = teacher_cfg
        which = spec.overrides['which']
        clip = dict(
            model_cfg=copy.deepcopy(base[f'tiny_{which}_clip']),
            quick_gelu=True,
            checkpoint=_clip_checkpoint(base, which, args.random_weights))
        if spec.kind == 'zero_shot':
            cfg.model = dict(
                type='ZeroShotCLIPClassifier',
                _scope_='mmpromptkd',
                clip=clip,
                template=TEMPLATE)
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
            cfg.model[role].clip.model_cfg = copy.deepcopy(
                base[f'tiny_{which}_clip'])
            cfg.model[role].clip.checkpoint = _clip_checkpoint(
                base, which, args.random_weights)
        cfg.model.teacher.checkpoint = teacher_ckpt
        if spec.members:
            cfg.model.teacher = _ensemble(cfg.model.teacher, base, spec,
                                          teacher_ckpt, args.random_weights)
        if spec.teacher_scores:
            # The teacher's own accuracy: its scores on the test split.
            cfg.model.predict_teacher = True
            cfg.test_evaluator = dict(type='BaseNovelAccuracy',
                                      score_key='teacher_score')
        cfg.merge_from_dict(copy.deepcopy(spec.overrides))
        if args.student_epochs is not None:
            set_epochs(cfg, args.student_epochs)
    _common(cfg, args, data, seed)
    if args.cfg_options:
        options = argparse.Namespace()
        CfgOptionsAction(
            option_strings=[], dest='o')(None, options, args.cfg_options)
        cfg.merge_from_dict(options.o)
    return cfg
