"""The official code's pure-fp16 precision (``PREC: fp16``), reproduced.

The official code loads OpenAI CLIP with fp16 weights and trains without
master weights or loss scaling: the fp16 tensors are updated in fp16 by
SGD (momentum buffers in fp16 too). Which tensors are fp16 follows OpenAI
CLIP's ``convert_weights``: the weights and biases of every convolution and
linear layer, the attention input projections, and the ``proj`` /
``text_projection`` matrices. Layer norms keep fp32 weights and compute in
fp32 (then cast back), embeddings, class token and prompts created by the
prompt code stay fp32 and are cast to fp16 where they enter the towers.
"""
from open_clip.transformer import LayerNormFp32
from torch import nn

__all__ = ['convert_to_reference_fp16']

_ATTENTION_TENSORS = ('in_proj_weight', 'q_proj_weight', 'k_proj_weight',
                      'v_proj_weight', 'in_proj_bias', 'bias_k', 'bias_v')
_PROJECTIONS = ('proj', 'text_projection')


def _half(module: nn.Module, name: str) -> None:
    tensor = getattr(module, name, None)
    if isinstance(tensor, nn.Parameter):
        # In place: optimizers built before keep the same parameters.
        tensor.data = tensor.data.half()


def _fp32_layer_norm(norm: nn.LayerNorm) -> LayerNormFp32:
    """A LayerNormFp32 with the same parameters (not copies: optimizers
    built before keep them)."""
    fp32 = LayerNormFp32(norm.normalized_shape, eps=norm.eps,
                         elementwise_affine=norm.elementwise_affine,
                         bias=norm.bias is not None)
    fp32.weight, fp32.bias = norm.weight, norm.bias
    return fp32.train(norm.training)


def convert_to_reference_fp16(module: nn.Module) -> nn.Module:
    """Give ``module`` the dtypes the official code trains with.

    Args:
        module (nn.Module): A CLIP model (or a projector); changed in place.

    Returns:
        nn.Module: ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            _half(m, 'weight')
            _half(m, 'bias')
        if isinstance(m, nn.MultiheadAttention):
            for name in _ATTENTION_TENSORS:
                _half(m, name)
        for name in _PROJECTIONS:
            _half(m, name)
    # Layer norms compute in fp32 and cast back, as the official CLIP's
    # LayerNorm does: each becomes a LayerNormFp32 with its parameters
    # (one replacement for a norm that appears under several names).
    replaced = {}
    for name, m in list(module.named_modules(remove_duplicate=False)):
        if name and isinstance(m, nn.LayerNorm) and \
                not isinstance(m, LayerNormFp32):
            if id(m) not in replaced:
                replaced[id(m)] = _fp32_layer_norm(m)
            parent, _, child = name.rpartition('.')
            setattr(module.get_submodule(parent), child, replaced[id(m)])
    return module
