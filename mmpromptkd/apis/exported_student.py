"""Export a trained PromptKD student and load it for inference alone."""
import copy
from typing import List, Optional

import torch
from torch import nn

from mmpromptkd.registry import MODELS
from mmpromptkd.utils import load_checkpoint_file, save_checkpoint_file
from .stored_config import check_stored_config, image_only_architecture

EXPORT_KIND = 'mmpromptkd.exported_student'
#: What a stored test pipeline may name (it comes from a file): loading,
#: resizing, cropping and packing. Geometry steps are used for inference.
_LOADING = ('LoadImageFromFile', 'LoadImageFromFileSafe', 'PackInputs')
_GEOMETRY = ('ResizeEdge', 'Resize', 'CenterCrop')
_SCOPES = ('', 'mmpretrain', 'mmcv', 'mmpromptkd')
#: The largest size a stored resize or crop may ask for.
_MAX_SIZE = 4096


def export_student(model: nn.Module, model_cfg: dict, path: str,
                   overwrite: bool = False, with_text_encoder: bool = False,
                   test_pipeline: Optional[list] = None) -> dict:
    """Write the student, projector and stored text features to ``path``,
    a file that needs neither the teacher nor any CLIP weight file.

    Args:
        model (nn.Module): A trained :class:`PromptKDDistiller`.
        model_cfg (dict): The config the distiller was built from.
        path (str): Output file.
        overwrite (bool): Replace an existing file.
        with_text_encoder (bool): Also store the teacher's text tower and
            prompts, so that new class names can be encoded (needs a
            :class:`PromptedCLIP` teacher).
        test_pipeline (list[dict], optional): Stored in the file's meta.

    Returns:
        dict: The standalone model config stored in the file.
    """
    from mmpromptkd.models.utils.teacher_provenance import (
        check_trained_teacher, teacher_record)
    if len(model.text_features) == 0:
        raise ValueError('the model has no stored text features; train it '
                         'or prepare them with its teacher first')
    cfg = copy.deepcopy(dict(model_cfg))
    cfg['teacher'] = None
    student = cfg['student'] = dict(cfg['student'])
    if hasattr(model.student, 'clip'):
        architecture = model.student.clip_architecture
        if not model.student.has_text_tower:
            architecture = image_only_architecture(architecture)
        student.update(checkpoint=None, clip=copy.deepcopy(architecture))
    else:  # a BackboneStudent: no pretrained weights to read either
        student['init_cfg'] = None
    if model.projector is not None:
        cfg['projector'] = dict(
            cfg.get('projector') or dict(type='FeatureProjector'),
            out_channels=model.text_features.shape[1])
    # Lets mmpretrain's APIs (which build in their own scope) build it.
    cfg['_scope_'] = 'mmpromptkd'
    state = model.state_dict()
    if with_text_encoder:
        check_trained_teacher(model.teacher, model.allow_untrained_teacher,
                              'export_student(with_text_encoder=True)')
        model.check_text_features_teacher()
        cfg['text_encoder'], text_state = _text_encoder(model, model_cfg)
        state.update(text_state)
    meta = dict(
        kind=EXPORT_KIND, model=_plain(cfg),
        # Read by mmpretrain's inferencers for the class names.
        dataset_meta=dict(classes=list(model.class_names)),
        teacher=model.text_features_teacher or teacher_record(model.teacher),
        test_pipeline=_plain(list(test_pipeline or [])))
    save_checkpoint_file(dict(state_dict=state, meta=meta), path,
                         overwrite=overwrite)
    return cfg


def _text_encoder(model: nn.Module, model_cfg: dict) -> tuple:
    """Config and ``text_encoder.*`` weights of the teacher's text tower."""
    from mmpromptkd.models.clip import PromptedCLIP
    teacher = model.teacher
    if not isinstance(teacher, PromptedCLIP):
        raise ValueError(
            f'with_text_encoder needs a PromptedCLIP teacher, this model '
            f'has {type(teacher).__name__}: its text features cannot be '
            'computed by a prompted text tower alone')
    if not teacher.has_text_tower:
        raise ValueError('with_text_encoder needs the teacher\'s text tower, '
                         'which this model released after storing its '
                         'features (release_teacher_text_tower=True); '
                         'export from a model built from the config')
    tokenizer = teacher.clip_architecture['model_cfg'].get(
        'text_cfg', {}).get('hf_tokenizer_name')
    if tokenizer:
        raise ValueError(
            f'with_text_encoder: the teacher\'s tokenizer is the Hugging Face '
            f'tokenizer "{tokenizer}", which an exported file cannot name (a '
            'stored config names no hub or folder); export without the text '
            'encoder')
    cfg = copy.deepcopy(dict(model_cfg['teacher']))
    cfg.update(type='PromptedCLIP', image_tower=False, checkpoint=None,
               clip=copy.deepcopy(teacher.clip_architecture),
               vision_prompt_depth=0)
    built = MODELS.build(cfg)  # its keys: what the file must hold
    source = teacher.state_dict()
    if missing := sorted(set(built.state_dict()) - set(source)):
        raise ValueError(f'the teacher lacks text-tower weights {missing}')
    state = {f'text_encoder.{k}': source[k].detach().clone()
             for k in built.state_dict()}
    return cfg, state


def load_exported_student(path: str,
                          device: Optional[str] = 'cpu') -> nn.Module:
    """Build a distiller from an exported student file, without teacher.

    Args:
        path (str): File written by :func:`export_student`.
        device (str, optional): Device of the model.

    Returns:
        nn.Module: The distiller in eval mode, with its ``test_pipeline``.
    """
    payload = load_checkpoint_file(path)
    meta = payload.get('meta', None) if isinstance(payload, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    if meta.get('kind') != EXPORT_KIND:
        raise ValueError(f'{path} is not an exported mmpromptkd student '
                         f'(meta.kind={meta.get("kind")!r}); export one with '
                         'tools/model_converters/export_student.py')
    if not isinstance(meta.get('model'), dict) or not isinstance(
            payload.get('state_dict'), dict):
        raise ValueError(f'{path}: an exported student needs a dict '
                         '"meta.model" and a dict "state_dict"')
    shapes = {k: tuple(v.shape) for k, v in payload['state_dict'].items()
              if isinstance(v, torch.Tensor)}
    check_stored_config(meta['model'], f'{path}: meta.model',
                        state_shapes=shapes)
    model = MODELS.build(meta['model'])
    model.load_state_dict(payload['state_dict'], strict=True)
    # mmpretrain's inferencer names classes from dataset_meta, ours from
    # the stored rows: they must be one list.
    listed = (meta.get('dataset_meta') or {}).get('classes')
    if listed is not None and tuple(listed) != model.class_names:
        raise ValueError(
            f'{path}: meta.dataset_meta.classes ({len(listed)} names) differ '
            f'from the classes of the stored text features '
            f'({len(model.class_names)} names, class_names_utf8): the file '
            'names other classes than it predicts. Export it again.')
    model.test_pipeline = _checked_pipeline(meta.get('test_pipeline'), path)
    return model.to(device).eval()


def _checked_pipeline(pipeline, path: str) -> List[dict]:
    """A stored test pipeline, if it names only allowed steps and sizes."""
    if pipeline is None:
        return []
    where = f'{path}: meta.test_pipeline'
    if not isinstance(pipeline, list) or not all(
            isinstance(t, dict) for t in pipeline):
        raise ValueError(f'{where} must be a list of transform dicts')
    for i, step in enumerate(pipeline):
        scope, _, name = str(step.get('type')).rpartition('.')
        if scope not in _SCOPES or name not in _LOADING + _GEOMETRY:
            raise ValueError(
                f'{where}[{i}]: type {step.get("type")!r} is not one of '
                f'{list(_LOADING + _GEOMETRY)} (an exported student stores '
                'only its loading, resizing and cropping steps)')
        for key in ('scale', 'crop_size'):
            sizes = step.get(key, 1)
            sizes = sizes if isinstance(sizes, (list, tuple)) else [sizes]
            if not all(type(v) is int and 0 < v <= _MAX_SIZE
                       for v in sizes):
                raise ValueError(f'{where}[{i}].{key}: expected sizes from '
                                 f'1 to {_MAX_SIZE}, got {step[key]!r}')
    return copy.deepcopy(pipeline)


def preprocessing(model: nn.Module) -> List[dict]:
    """The resize and crop steps of an exported student's stored test
    pipeline, else a bicubic short-edge resize and a centre crop to the
    student's resolution, as transform configs with bare type names.

    Args:
        model (nn.Module): A model from :func:`load_exported_student`.
    """
    steps = [dict(t, type=t['type'].rpartition('.')[2])
             for t in getattr(model, 'test_pipeline', [])
             if t['type'].rpartition('.')[2] in _GEOMETRY]
    if steps:
        return steps
    size = tuple(model.student.image_size)
    return [dict(type='ResizeEdge', scale=min(size), edge='short',
                 interpolation='bicubic', backend='pillow'),
            dict(type='CenterCrop', crop_size=size[::-1])]


def _plain(obj):
    """Turn config containers into plain dicts/lists (safe to unpickle)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
