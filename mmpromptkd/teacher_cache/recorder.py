"""Record a teacher cache: run the teacher once over a training stream."""
import json
import os.path as osp
import random
import time
from typing import Optional

import numpy as np
import torch
from mmengine.model import is_model_wrapper

from mmpromptkd.engine.hooks.cpu_threads_hook import CPUThreadsHook
from mmpromptkd.engine.hooks.epoch_seed_hook import epoch_seed
from mmpromptkd.models.utils.input_normalization import \
    teacher_input_normalization
from mmpromptkd.models.utils.teacher_provenance import teacher_record
from .fingerprints import sample_fingerprints
from .logit_cache import TeacherLogitCache, sample_paths
from .replay import pipeline_signature


def record_teacher_cache(runner,
                         out: str,
                         epochs: int,
                         storage: str = 'float16',
                         topk: Optional[int] = None,
                         member: Optional[int] = None,
                         config: str = '') -> TeacherLogitCache:
    """Iterate the runner's training data as training does; cache logits.

    Seeds and threads are set as in training (``DistSamplerSeedHook``,
    ``EpochSeedHook``, ``CPUThreadsHook``), so the views and logits are
    those of a training run.

    Args:
        runner (Runner): A runner of a config to record.
        out (str): The cache folder; must not exist.
        epochs (int): Epochs (views per image) to record.
        storage (str): Logit storage.
        topk (int, optional): Logits kept with 'topk'.
        member (int, optional): The ``TeacherEnsemble`` member to record.
        config (str): The config path, for the record.

    Returns:
        TeacherLogitCache: The committed cache.
    """
    model = runner.model.module if is_model_wrapper(
        runner.model) else runner.model
    teacher = model.teacher
    if teacher is None:
        raise ValueError('the config has no teacher to cache')
    members = getattr(teacher, 'members', None)
    if members is not None and member is None:
        raise ValueError(
            f'model.teacher is a TeacherEnsemble of {len(members)} members: '
            f'record one cache per member (--member 0 to '
            f'{len(members) - 1}) and train from them with '
            'TeacherCachedDataset(cache=[...], ensemble=...), see '
            'docs/teacher_ensembles.md')
    if member is not None and (members is None or
                               not 0 <= member < len(members)):
        raise ValueError(
            f'--member {member}: ' +
            ('the config has a single teacher, not a TeacherEnsemble'
             if members is None else
             f'the ensemble has members 0 to {len(members) - 1}'))
    if model.distill_target != 'logits':
        raise ValueError("a teacher cache holds logits: distill_target must "
                         "be 'logits'")
    # The threads of training, so that the logits are an online run's to
    # the last bit.
    thread_hooks = [h for h in runner.hooks if isinstance(h, CPUThreadsHook)]
    for hook in thread_hooks:
        hook.before_run(runner)
    loader = runner.train_dataloader
    dataset = loader.dataset
    names = tuple(dataset.metainfo['classes'])
    model.eval()
    model.prepare_text_features(names, True, type(dataset).__name__)
    shared = model.text_features
    if member is None:
        text, recorded = shared, teacher
        normalization = model.teacher_normalization
        extra = {}
    else:
        recorded = members[member]
        text = shared if member == teacher.text_member else \
            teacher.member_text_features(member, names)
        normalization = teacher.member_normalization(member)
        # Its index, its teacher config as built and its normalisation.
        identity = dict(index=member, **teacher.combination.members[member])
        extra = dict(ensemble_member=json.loads(
            json.dumps(identity, sort_keys=True, default=repr)))
    cache = TeacherLogitCache.create(
        out,
        num_views=epochs,
        num_samples=len(dataset),
        class_names=names,
        text_features=text.float().cpu().numpy(),
        storage=storage,
        topk=topk,
        tau=getattr(model.distill_loss, 'tau', 1.0),
        sample_paths=sample_paths(dataset),
        sample_fingerprints=sample_fingerprints(dataset, config),
        pipeline=pipeline_signature(runner.cfg.train_dataloader.dataset),
        seed=runner.seed,
        config=osp.basename(config),
        teacher=teacher_record(recorded),
        # What the teacher's images were normalised with (0-255 scale).
        teacher_input=teacher_input_normalization(model.data_preprocessor,
                                                  normalization),
        **extra)
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            if hasattr(loader.sampler, 'set_epoch'):
                loader.sampler.set_epoch(epoch)
            seed = epoch_seed(runner.seed, epoch)
            random.seed(seed)
            np.random.seed(seed)
            torch.manual_seed(seed)
            for data in loader:
                samples = data['data_samples']
                inputs = model.data_preprocessor(data, True)['inputs']
                with torch.no_grad():
                    logits = model.teacher_logits(inputs, text) \
                        if member is None else teacher.member_logits(
                            inputs, names, shared, only=member)[0]
                cache.put(epoch, [s.sample_idx for s in samples],
                          [s.metainfo.get('view_crop') for s in samples],
                          [s.metainfo.get('flip', False) for s in samples],
                          logits.float().cpu().numpy())
            runner.logger.info(f'teacher cache: epoch {epoch + 1}/{epochs} '
                               'recorded')
        cache.meta['seconds'] = time.perf_counter() - start
        runner.cfg.dump(osp.join(cache.path, 'config.py'))
        return cache.commit()
    except BaseException:
        cache.discard()
        raise
    finally:
        for hook in thread_hooks:
            hook.after_run(runner)
