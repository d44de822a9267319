"""Hook that prepares the teacher's stored text features."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpromptkd.models.utils.input_normalization import (
    same_normalization, teacher_input_normalization)
from mmpromptkd.registry import HOOKS


def check_cached_teacher_input(cache, model) -> None:
    """Refuse a teacher cache recorded from other teacher input.

    Its logits were made from the teacher's images as normalised then
    (``meta.json``'s ``teacher_input``); a run that would normalise them
    otherwise (another data preprocessor or ``teacher_normalization``)
    would learn from logits of other inputs.

    Args:
        cache (TeacherLogitCache): The opened cache.
        model (nn.Module): The distiller (``data_preprocessor``,
            ``teacher_normalization``).

    Raises:
        ValueError: If the record is missing, malformed or different.
    """
    recorded = cache.meta.get('teacher_input')
    now = teacher_input_normalization(
        model.data_preprocessor, getattr(model, 'teacher_normalization',
                                         None))
    if recorded is None:
        raise ValueError(
            f'{cache.path} does not record how the teacher\'s images were '
            'normalised (recorded by an older version): record it again '
            'with tools/misc/cache_teacher_logits.py')
    valid = isinstance(recorded, dict) and set(recorded) == {
        'mean', 'std'
    } and all(
        isinstance(v, list) and len(v) == 3 and all(
            type(x) in (int, float) for x in v) for v in recorded.values())
    if not (valid and same_normalization(recorded, now)):
        raise ValueError(
            f'{cache.path} was recorded from teacher images normalised with '
            f'{recorded} (0-255 scale); this run would give the teacher '
            f'{now}: set model.data_preprocessor and '
            'model.teacher_normalization as when it was recorded, or record '
            'the cache again')


@HOOKS.register_module()
class PromptKDTextFeaturesHook(Hook):
    """Give the distiller the class names of each dataset it runs on.

    Before training, the teacher's text features of the training classes are
    computed once and stored (or checked against the stored ones after a
    resume or ``load_from``: a mismatch stops the run before it starts).
    Before validation and testing, the classes of that dataset are checked
    against the stored ones; a subset of them (ImageNet-A/-R) uses their
    rows, and different classes are evaluated with temporary teacher
    features.

    A training set with cached teacher logits
    (:class:`~mmpromptkd.datasets.TeacherCachedDataset`) gives the text
    features they were made with instead: the run needs no teacher.

    A model that takes no class names (no ``prepare_text_features``, e.g.
    the stand-in model of mmpretrain's ``vis_scheduler.py``) is left alone.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _prepare(runner, dataloader, for_training: bool) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'prepare_text_features'):
            runner.logger.info(f'PromptKDTextFeaturesHook: '
                               f'{type(model).__name__} takes no class '
                               'names; nothing to prepare')
            return
        dataset = dataloader.dataset
        classes = dataset.metainfo.get('classes')
        if not classes:
            raise ValueError(f'{type(dataset).__name__} has no '
                             "metainfo['classes']; PromptKD needs class names")
        cached = getattr(dataset, 'teacher_text_features', None)
        if for_training and cached is not None:
            # A teacher cache: its logits were made with these features.
            cache = dataset.cache
            tau = getattr(getattr(model, 'distill_loss', None), 'tau', None)
            if cache.storage == 'topk' and tau is not None and \
                    tau != cache.meta['tau']:
                raise ValueError(
                    f'{cache.path} keeps the top-{cache.meta["topk"]} logits '
                    f'with the rest\'s mass at tau={cache.meta["tau"]}; the '
                    f'loss has tau={tau}: record the cache at that tau')
            check_cached_teacher_input(cache, model)
            model.use_cached_text_features(
                classes, cached, source=f'the teacher cache {cache.path}',
                teacher=cache.meta.get('teacher'))
        kwargs = {}
        # ImageNet variants map their classes into ImageNet's 1000, so a
        # student with stored ImageNet features needs no teacher for them.
        indices = dataset.metainfo.get('imagenet_class_indices')
        if indices is not None and not for_training:
            kwargs['class_indices'] = indices
        model.prepare_text_features(
            classes,
            for_training,
            dataset_name=type(dataset).__name__,
            **kwargs)

    def before_train(self, runner) -> None:
        self._prepare(runner, runner.train_dataloader, True)

    def before_val(self, runner) -> None:
        self._prepare(runner, runner.val_dataloader, False)

    def before_test(self, runner) -> None:
        self._prepare(runner, runner.test_dataloader, False)
