"""Hook that prepares the teacher's stored text features."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpromptkd.registry import HOOKS


@HOOKS.register_module()
class PromptKDTextFeaturesHook(Hook):
    """Give the model (``prepare_text_features``) the class names of each
    dataset it runs on: the training classes' text features are stored or
    checked before training (a teacher cache gives those its logits were
    made with), other datasets' classes checked before evaluation.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _prepare(runner, dataloader, for_training: bool) -> None:
        """Prepare the text features of one dataloader's classes."""
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
        if for_training and hasattr(dataset, 'training_text_features'):
            # A teacher cache: its logits were made with these features.
            features, teacher = dataset.training_text_features(model)
            model.use_cached_text_features(
                classes, features, teacher=teacher,
                source=f'the teacher cache {dataset.cache.path}')
        # ImageNet variants map their classes into ImageNet's 1000, so a
        # student with stored ImageNet features needs no teacher for them.
        # Passed only where there are any: other models need not take them.
        indices = dataset.metainfo.get('imagenet_class_indices')
        kwargs = {} if indices is None or for_training else dict(
            class_indices=indices)
        model.prepare_text_features(
            classes, for_training, dataset_name=type(dataset).__name__,
            **kwargs)

    def before_train(self, runner) -> None:
        self._prepare(runner, runner.train_dataloader, True)

    def before_val(self, runner) -> None:
        self._prepare(runner, runner.val_dataloader, False)

    def before_test(self, runner) -> None:
        self._prepare(runner, runner.test_dataloader, False)
