"""``python -m benchmarks real_memory``: its measurements, on tiny towers."""
from benchmarks import real_memory
from benchmarks.common import class_names
from mmpromptkd.models.clip import PromptedCLIP


def _tiny(tiny_clip_cfg):
    return PromptedCLIP(clip=tiny_clip_cfg, vision_prompt_depth=2,
                        text_prompt_depth=2)


def test_text_activations_grow_linearly_with_the_classes(tiny_clip_cfg):
    """The extension from two subsets equals a measurement of all names."""
    model = _tiny(tiny_clip_cfg)
    names = class_names(48)
    everything = real_memory._with_longest(names, 48, model.tokenizer)
    for checkpointing in (False, True):
        for truncate in (True, False):
            model.truncate_text = truncate
            measured = real_memory._saved(
                model, lambda: model.encode_text(everything), checkpointing)
            extended = real_memory.text_saved(model, names, checkpointing,
                                              truncate, sizes=(8, 16))
            assert abs(extended - measured) <= 1e-9 * measured


def test_checkpointing_and_truncation_save_memory(tiny_clip_cfg):
    model = _tiny(tiny_clip_cfg)
    names = class_names(32)
    full, truncated, checkpointed = (
        real_memory.text_saved(model, names, ckpt, trunc, sizes=(8, 16))
        for ckpt, trunc in ((False, False), (False, True), (True, True)))
    assert checkpointed < truncated < full
