"""The official code's pure-fp16 precision (``PREC: fp16``): OpenAI CLIP's
``convert_weights`` tensors in fp16, without master weights or loss scaling;
layer norms in fp32."""
from open_clip.transformer import LayerNormFp32
from torch import nn

_ATTENTION_TENSORS = ('in_proj_weight', 'q_proj_weight', 'k_proj_weight',
                      'v_proj_weight', 'in_proj_bias', 'bias_k', 'bias_v')
_PROJECTIONS = ('proj', 'text_projection')


def _half(module: nn.Module, name: str) -> None:
    """Cast the parameter ``name`` of ``module`` to fp16, if it has one."""
    tensor = getattr(module, name, None)
    if isinstance(tensor, nn.Parameter):
        # In place: optimizers built before keep the same parameters.
        tensor.data = tensor.data.half()


def convert_to_reference_fp16(module: nn.Module) -> nn.Module:
    """Give a CLIP (or projector) in place the official code's dtypes.

    Not open_clip's ``convert_weights_to_lp``: it also casts its own
    ``Attention`` and only the projections of its own tower classes.
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
    # As the official CLIP's LayerNorm; one replacement for a norm that
    # appears under several names.
    replaced = {}
    for name, m in list(module.named_modules(remove_duplicate=False)):
        if name and isinstance(m, nn.LayerNorm) and \
                not isinstance(m, LayerNormFp32):
            if id(m) not in replaced:
                fp32 = LayerNormFp32(m.normalized_shape, eps=m.eps,
                                     elementwise_affine=m.elementwise_affine,
                                     bias=m.bias is not None)
                # The same parameters, not copies: optimizers built before
                # keep them.
                fp32.weight, fp32.bias = m.weight, m.bias
                replaced[id(m)] = fp32.train(m.training)
            parent, _, child = name.rpartition('.')
            setattr(module.get_submodule(parent), child, replaced[id(m)])
    return module
