"""MaPLe: multi-modal prompts, vision prompts coupled to text prompts."""
from typing import List

import torch
from torch import nn

from mmpromptkd.registry import MODELS
from .base_prompt_classifier import PROMPT_OPTIONS, BasePromptClassifier


@MODELS.register_module()
class MaPLeClassifier(BasePromptClassifier):
    """Deep text prompts and vision prompts made from them.

    The vision prompt of block ``i`` is ``vision_prompt_maps[i]`` (a learned
    ``Linear``) of the text prompt ``i``; the PromptedCLIP's own vision
    prompts are removed, so its ``encode_image`` always gets ``prompts``.

    Args:
        clip (dict): Weight source of the CLIP.
        prompt_depth (int): Blocks with prompts in both towers (>= 1).
        prompt_length (int): Prompt tokens in both towers.
        ctx_init (str): Initial context text.
        **kwargs: Other arguments of :class:`BasePromptClassifier`.
    """

    def __init__(self, clip: dict, prompt_depth: int = 9,
                 prompt_length: int = 2, ctx_init: str = 'a photo of a',
                 **kwargs) -> None:
        for key in PROMPT_OPTIONS[:4]:  # the depths and lengths
            if key in kwargs:
                raise TypeError(f'MaPLeClassifier takes prompt_depth and '
                                f'prompt_length for both towers, not {key}')
        if isinstance(prompt_depth, bool) or not isinstance(
                prompt_depth, int) or prompt_depth < 1:
            raise ValueError('MaPLe couples the prompts of both towers: '
                             f'prompt_depth must be >= 1, got {prompt_depth}')
        try:
            super().__init__(
                clip=clip, vision_prompt_depth=prompt_depth,
                vision_prompt_length=prompt_length,
                text_prompt_depth=prompt_depth,
                text_prompt_length=prompt_length, ctx_init=ctx_init, **kwargs)
        except ValueError as e:
            if 'must be between' not in str(e):
                raise
            raise ValueError(f'MaPLe prompt_depth={prompt_depth} is larger '
                             f'than a tower of this CLIP: {e}') from None

    def _add_prompt_modules(self) -> None:
        """Replace the vision prompts with maps from the text prompts."""
        pc = self.prompted_clip
        self.prompt_depth = pc.text_prompt_depth
        self.prompt_length = pc.text_prompt_length
        del pc.vision_ctx
        del pc.vision_deep_prompts
        text_width = pc.text_ctx.shape[-1]
        vision_width = pc.vision_tower.prompt_width
        self.vision_prompt_maps = nn.ModuleList(
            nn.Linear(text_width, vision_width)
            for _ in range(self.prompt_depth))
        if pc.reference_fp16:
            # The official code halves the first map (its ``proj``) only.
            self.vision_prompt_maps[0].half()

    def text_prompts(self) -> List[torch.Tensor]:
        """The ``prompt_depth`` text prompts, the context first."""
        return self.prompted_clip.own_prompts('text')

    def vision_prompts(self) -> List[torch.Tensor]:
        """The vision prompts mapped from the text prompts."""
        return [linear(prompt) for linear, prompt in
                zip(self.vision_prompt_maps, self.text_prompts())]

    def encode_image(self, images: torch.Tensor,
                     normalize: bool = False) -> torch.Tensor:
        """Image features (B, embed_dim) with the coupled vision prompts."""
        return self.prompted_clip.encode_image(
            images, normalize=normalize, prompts=self.vision_prompts())
