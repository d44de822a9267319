"""PromptKDTextFeaturesHook hands each dataset's classes to the model."""
from types import SimpleNamespace

from mmpromptkd.engine.hooks import PromptKDTextFeaturesHook


class _Model:
    """A model whose ``prepare_text_features`` takes no ImageNet indices."""

    def __init__(self):
        self.calls = []

    def prepare_text_features(self, classes, for_training, dataset_name):
        self.calls.append((tuple(classes), for_training, dataset_name))


def _runner(model, metainfo):
    dataset = SimpleNamespace(metainfo=metainfo)
    loader = SimpleNamespace(dataset=dataset)
    return SimpleNamespace(model=model, train_dataloader=loader,
                           val_dataloader=loader, test_dataloader=loader)


def test_class_indices_are_passed_only_where_a_dataset_has_them():
    model = _Model()
    runner = _runner(model, dict(classes=('cat', 'dog')))
    hook = PromptKDTextFeaturesHook()
    hook.before_train(runner)
    hook.before_val(runner)
    assert model.calls == [(('cat', 'dog'), True, 'SimpleNamespace'),
                           (('cat', 'dog'), False, 'SimpleNamespace')]
    seen = []
    model.prepare_text_features = lambda *a, **kw: seen.append(kw)
    runner = _runner(model, dict(classes=('a', ), imagenet_class_indices=[7]))
    hook.before_train(runner)
    hook.before_test(runner)
    assert seen == [dict(dataset_name='SimpleNamespace'),
                    dict(dataset_name='SimpleNamespace', class_indices=[7])]
