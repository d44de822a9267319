"""The effective batch and lr that a run states, and its warning."""
from mmpromptkd.engine.runner.batch_and_lr import describe_batch_and_lr


class TestDescribeBatchAndLr:

    def test_one_gpu_at_the_configs_batch(self):
        statement, warning = describe_batch_and_lr(
            8, 1, [0.005, 0.005], dict(base_batch_size=8))
        assert statement == (
            'Effective batch 8 = 8 per process x 1 process x 1 accumulation '
            "step; lr 0.005 (the config's, set for a batch of 8; not "
            'scaled)')
        assert warning is None

    def test_eight_gpus_without_the_flag_warn(self):
        # tools/dist_train.sh CONFIG 8 on a 1xb8 config.
        statement, warning = describe_batch_and_lr(
            8, 8, [0.005], dict(base_batch_size=8, enable=False))
        assert statement.startswith(
            'Effective batch 64 = 8 per process x 8 processes x 1 '
            'accumulation step; lr 0.005 ')
        assert warning == (
            'the effective batch 64 differs from '
            "auto_scale_lr.base_batch_size=8, the batch the config's lr is "
            'set for, and the lr is not scaled: pass --auto-scale-lr to '
            'scale it linearly (lr 0.04), or train with a total batch of 8 '
            '(train_dataloader.batch_size x processes)')

    def test_eight_gpus_with_the_flag(self):
        # The lr after mmengine's scaling: 0.005 x 64 / 8.
        statement, warning = describe_batch_and_lr(
            8, 8, [0.04], dict(base_batch_size=8, enable=True))
        assert statement == (
            'Effective batch 64 = 8 per process x 8 processes x 1 '
            "accumulation step; lr 0.04 (--auto-scale-lr: the config's lr "
            'for a batch of 8, times 64/8)')
        assert warning is None

    def test_a_changed_batch_size_warns_too(self):
        _, warning = describe_batch_and_lr(8, 1, [0.001],
                                           dict(base_batch_size=32))
        assert 'effective batch 8 differs from ' \
            'auto_scale_lr.base_batch_size=32' in warning
        assert '(lr 0.00025)' in warning

    def test_without_a_base_batch_size(self):
        statement, warning = describe_batch_and_lr(4, 2, [0.1, 0.01], None)
        assert statement == (
            'Effective batch 8 = 4 per process x 2 processes x 1 '
            'accumulation step; lr 0.01, 0.1 (parameter groups) (the config '
            'sets no auto_scale_lr.base_batch_size: the lr is not scaled)')
        assert warning is None

    def test_accumulation_counts_in_the_batch_but_not_in_the_scaling(self):
        statement, warning = describe_batch_and_lr(
            8, 2, [0.005], dict(base_batch_size=32), accumulative_counts=2)
        assert statement.startswith('Effective batch 32 = 8 per process x 2 '
                                    'processes x 2 accumulation steps;')
        assert warning is None  # the lr was set for this batch
        _, warning = describe_batch_and_lr(
            8, 2, [0.005], dict(base_batch_size=32, enable=True),
            accumulative_counts=2)
        assert warning == (
            'auto_scale_lr scales by the batch of one step (16), not '
            'counting the 2 accumulation steps: give base_batch_size '
            'divided by them')
