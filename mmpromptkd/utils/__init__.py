from .checkpoint_io import (is_torchscript_archive, load_checkpoint_file,
                            read_torchscript_state_dict)

__all__ = [
    'is_torchscript_archive', 'load_checkpoint_file',
    'read_torchscript_state_dict'
]
