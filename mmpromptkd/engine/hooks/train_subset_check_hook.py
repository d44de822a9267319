"""Hook that checks a teacher's training classes before training."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmpromptkd.registry import HOOKS


@HOOKS.register_module()
class TrainSubsetCheckHook(Hook):
    """Stop a teacher run that would train on the wrong classes.

    The training dataset's ``metainfo`` goes to the model's
    ``check_training_dataset`` before ``PromptKDTextFeaturesHook`` runs.
    """

    priority = 'HIGHEST'

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'check_training_dataset'):
            raise TypeError(f'TrainSubsetCheckHook needs a model with '
                            f'check_training_dataset() (a teacher '
                            f'classifier), got {type(model).__name__}')
        dataset = runner.train_dataloader.dataset
        model.check_training_dataset(
            dict(getattr(dataset, 'metainfo', {}) or {}),
            dataset_name=type(dataset).__name__)
