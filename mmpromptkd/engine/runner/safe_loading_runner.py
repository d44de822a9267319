"""mmengine's Runner, reading checkpoints without running code in them."""
from typing import Callable, Union

from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import (CheckpointLoader,
                                        _load_checkpoint_to_model)

from mmpromptkd.registry import RUNNERS
from mmpromptkd.utils.checkpoint_io import SAFE_SCHEME, load_from_local

__all__ = ['SafeLoadingRunner']

# An added prefix only: mmengine's loaders of other paths stay as they are.
CheckpointLoader.register_scheme(prefixes=SAFE_SCHEME, loader=load_from_local)


@RUNNERS.register_module()
class SafeLoadingRunner(Runner):
    """A Runner whose ``--resume``, ``load_from`` and test loads are safe.

    mmengine reads checkpoints with a bare ``torch.load(filename)``, which
    unpickles anything once the environment sets
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``, fails on the ``HistoryBuffer``
    objects of its own training checkpoints under torch's safe default, and
    unpickles downloaded URLs with ``weights_only=False``; resuming also
    executes the Python config stored in the checkpoint's
    ``meta['config']`` (to compare GPU ids). This Runner reads every
    checkpoint through :func:`~mmpromptkd.utils.load_checkpoint_file`
    (``weights_only=True`` with an explicit allowlist, remote paths refused)
    and drops the stored config text before anything parses it. Everything
    else is mmengine's. Select it with ``runner_type = 'SafeLoadingRunner'``
    (our ``default_runtime`` does).
    """

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:
        """Load a checkpoint into the model, as mmengine's Runner does.

        Args:
            filename (str): Local checkpoint path.
            map_location (str | callable): Where tensors go. Defaults to
                'cpu'.
            strict (bool): Whether keys must match exactly (models of this
                package check their own keys). Defaults to False.
            revise_keys (list): ``(pattern, replacement)`` pairs applied to
                the keys. Defaults to stripping ``module.``.

        Returns:
            dict: The checkpoint.
        """
        checkpoint = load_from_local(filename, map_location=map_location)
        meta = checkpoint.get('meta')
        if isinstance(meta, dict):
            # Config.fromstring would execute it: stored text is code.
            meta.pop('config', None)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        checkpoint = _load_checkpoint_to_model(
            model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint
