"""CLIP with deep vision and text prompts (IVLP) over open_clip."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint as grad_checkpoint

from mmpromptkd.registry import MODELS
from mmpromptkd.utils import read_model_checkpoint
from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               load_state_dict_strictly)
from ..utils.reference_fp16 import convert_to_reference_fp16
from ..utils.teacher_provenance import PromptSource, prompt_source, settle
from .class_prompts import (Tokenizer, check_token_ids, text_tokenizer,
                            tokenize_class_prompts)
from .clip_builder import (build_clip_and_architecture,
                           pretrained_normalization, text_only_source)
from .hf_tokenizer import LocalHFTokenizer
from .towers import TextTower, VisionTower, vision_tower_of
from .towers.openclip_vit_tower import batch_first_block
from .towers.text_tower import drop_text_tower


@MODELS.register_module()
class PromptedCLIP(BaseModule):
    """A frozen open_clip CLIP with learnable deep prompts.

    Vision prompts are appended after the patch tokens and replaced by
    blocks ``1 .. depth - 1`` (see :mod:`.towers`); the text context tokens
    after the start token likewise. A depth of 0 is the plain tower.

    Args:
        clip (dict): Weight source, see :func:`build_clip`.
        vision_prompt_depth (int): Vision blocks with a prompt.
        vision_prompt_length (int): Vision prompt tokens.
        text_prompt_depth (int): Text blocks with a prompt.
        text_prompt_length (int): Learnable context tokens.
        ctx_init (str): Initial context text, also the prefix of every class
            prompt (``"{ctx_init} {name}."``); random if too short.
        prompt_init_std (float): Std of the random prompt init.
        round_prompts_to_fp16 (bool): Round prompts through fp16 (official).
        reference_fp16 (bool): The official pure-fp16 precision.
        grad_checkpointing (bool): Recompute block activations in backward.
        truncate_text (bool): Stop the causal text tower after the last end
            token.
        text_tower (bool): Keep the text tower.
        image_tower (bool): Keep the image tower.
        freeze_clip (bool): Keep CLIP (always its logit scale) frozen.
        checkpoint (str, optional): A checkpoint of this class to load.
        init_cfg (dict, optional): Unused; weights come from ``clip``.
    """

    def __init__(self, clip: dict, vision_prompt_depth: int = 0,
                 vision_prompt_length: int = 4, text_prompt_depth: int = 0,
                 text_prompt_length: int = 4, ctx_init: str = 'a photo of a',
                 prompt_init_std: float = 0.02,
                 round_prompts_to_fp16: bool = False,
                 reference_fp16: bool = False,
                 grad_checkpointing: bool = False, truncate_text: bool = True,
                 text_tower: bool = True, image_tower: bool = True,
                 freeze_clip: bool = True, checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not image_tower:
            clip = text_only_source(clip)
        # clip_architecture rebuilds this CLIP without its weight file.
        self.clip, self.clip_architecture = build_clip_and_architecture(clip)
        self.clip.requires_grad_(False)
        self.input_normalization = pretrained_normalization(clip)
        self.reference_fp16 = reference_fp16
        if reference_fp16:
            convert_to_reference_fp16(self.clip)
        self.embed_dim = self.clip_architecture['model_cfg']['embed_dim']
        self._vision_tower = vision_tower_of(self.clip.visual)
        if vision_prompt_depth and not self._vision_tower.takes_prompts:
            raise ValueError(
                f'vision_prompt_depth={vision_prompt_depth}: '
                f'{self._vision_tower.no_prompts_reason}; use 0 (train the '
                'projector, text prompts or freeze_clip=False instead)')
        _check_depth('vision_prompt_depth', vision_prompt_depth,
                     len(self._vision_tower.blocks))
        self._text_tower = None
        self.has_text_tower = text_tower
        if text_tower:
            self._text_tower = TextTower(self.clip)
            # Read now: a missing tokenizer file, or one whose padding or
            # special tokens the embedding lacks, is an error at build.
            if isinstance(self.tokenizer, LocalHFTokenizer):
                self.tokenizer.check_vocabulary(self._vocab_size)
            _check_depth('text_prompt_depth', text_prompt_depth,
                         len(self._text_tower.module.transformer.resblocks))
        elif text_prompt_depth:
            raise ValueError('text_prompt_depth must be 0 when '
                             'text_tower=False')
        for name, length in (('vision_prompt_length', vision_prompt_length),
                             ('text_prompt_length', text_prompt_length)):
            if length < 1:
                raise ValueError(f'{name} must be >= 1, got {length}')
        if text_prompt_depth and (
                text_prompt_length + 1 + self.tokenizer.num_special >
                self._text_tower.context_length):
            raise ValueError(
                f'text_prompt_length={text_prompt_length} does not fit the '
                f'context length {self._text_tower.context_length} (the '
                'special tokens, context and at least one name token)')
        self.vision_prompt_depth = vision_prompt_depth
        self.vision_prompt_length = vision_prompt_length
        self.text_prompt_depth = text_prompt_depth
        self.text_prompt_length = text_prompt_length
        self.round_prompts_to_fp16 = round_prompts_to_fp16
        self.grad_checkpointing = grad_checkpointing
        self.truncate_text = truncate_text
        self._text_cache: Optional[Tuple[tuple, torch.Tensor, int]] = None

        def normal(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape) * prompt_init_std)

        width = self._vision_tower.prompt_width
        if vision_prompt_depth:
            self.vision_ctx = normal(vision_prompt_length, width)
            self.vision_deep_prompts = nn.ParameterList([
                normal(vision_prompt_length, width)
                for _ in range(vision_prompt_depth - 1)])
        self.prompt_prefix = ctx_init.replace('_', ' ').strip()
        if text_prompt_depth:
            init_ids = self.tokenizer.encode(self.prompt_prefix)
            if len(init_ids) >= text_prompt_length:
                ids = torch.tensor(init_ids[:text_prompt_length])
                check_token_ids(self.tokenizer, ids, self._vocab_size,
                                [f'ctx_init "{ctx_init}"'])
                embedding = self._text_tower.module.token_embedding
                with torch.no_grad():
                    init = embedding(ids.to(embedding.weight.device))
                self.text_ctx = nn.Parameter(init.float().clone())
                # The context replaces the first tokens of the prefix.
                if len(init_ids) > text_prompt_length:
                    MMLogger.get_current_instance().warning(
                        f'ctx_init "{ctx_init}" has {len(init_ids)} tokens; '
                        f'only the first {text_prompt_length} are learnable')
            else:
                self.text_ctx = normal(text_prompt_length,
                                       self._text_tower.width)
                self.prompt_prefix = ' '.join(['X'] * text_prompt_length)
            if reference_fp16:
                self.text_ctx.data = self.text_ctx.data.half()
            self.text_deep_prompts = nn.ParameterList([
                normal(text_prompt_length, self._text_tower.width)
                for _ in range(text_prompt_depth - 1)])
        if not text_tower:
            drop_text_tower(self.clip)
        self.has_image_tower = image_tower
        if not image_tower:
            if vision_prompt_depth:
                raise ValueError('vision_prompt_depth must be 0 when '
                                 'image_tower=False')
            if not text_tower:
                raise ValueError('a PromptedCLIP needs a text or an image '
                                 'tower')
            delattr(self.clip, 'visual')
            self._vision_tower = None
        if not freeze_clip:
            self.clip.requires_grad_(True)
            self.clip.logit_scale.requires_grad_(False)
        #: The stage-(a) file the prompts were loaded from, or None.
        self.prompt_source: Optional[PromptSource] = None
        if checkpoint is not None:
            self.load_prompt_checkpoint(checkpoint)

    def train(self, mode: bool = True) -> 'PromptedCLIP':
        """Set the mode; the frozen CLIP stays in eval mode."""
        super().train(mode)
        self.clip.eval()
        return self

    @property
    def dtype(self) -> torch.dtype:
        """torch.dtype: Dtype of the image tower."""
        return self.vision_tower.dtype

    @property
    def logit_scale(self) -> torch.Tensor:
        """Tensor: ``exp(logit_scale)``."""
        return self.clip.logit_scale.exp()

    @property
    def image_size(self) -> Tuple[int, int]:
        """tuple[int, int]: Input resolution."""
        return self.vision_tower.image_size

    @property
    def vision_tower(self) -> VisionTower:
        """VisionTower: How prompts enter the image tower."""
        if not self.has_image_tower:
            raise RuntimeError('this PromptedCLIP was built with '
                               'image_tower=False and has no image tower')
        return self._vision_tower

    @property
    def text_tower(self) -> TextTower:
        """TextTower: The text tower (context length, width, pooling)."""
        if not self.has_text_tower:
            raise RuntimeError('this PromptedCLIP has no text tower (built '
                               'with text_tower=False, or released after '
                               'its text features were stored) and cannot '
                               'encode text')
        return self._text_tower

    def _prompt(self, prompt: torch.Tensor, like: torch.Tensor,
                batch: int) -> torch.Tensor:
        """A prompt in the dtype of ``like``, expanded to the batch."""
        if self.round_prompts_to_fp16:
            prompt = prompt.half()
        return prompt.to(like.dtype).unsqueeze(0).expand(batch, -1, -1)

    def own_prompts(self, tower: str) -> List[torch.Tensor]:
        """The ``depth`` (length, width) prompts of tower 'vision' or
        'text', first layer first."""
        if not getattr(self, f'{tower}_prompt_depth'):
            return []
        return [getattr(self, f'{tower}_ctx')] + list(
            getattr(self, f'{tower}_deep_prompts'))

    def _check_prompts(self, prompts: Optional[Sequence[torch.Tensor]],
                       tower: str) -> Sequence[torch.Tensor]:
        """Given prompts, checked against the tower, or this model's own."""
        if prompts is None:
            return self.own_prompts(tower)
        depth = getattr(self, f'{tower}_prompt_depth')
        length = getattr(self, f'{tower}_prompt_length')
        if len(prompts) != depth or any(p.shape[0] != length for p in prompts):
            raise ValueError(
                f'{tower} prompts: expected {depth} tensors of {length} '
                f'tokens, got {[tuple(p.shape) for p in prompts]}')
        return prompts

    def _run_block(self, block, x: torch.Tensor,
                   attn_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Run ``block(x, attn_mask)``, with gradient checkpointing."""
        if self.grad_checkpointing and self.training and \
                torch.is_grad_enabled():
            return grad_checkpoint(block, x, attn_mask, use_reentrant=False)
        return block(x, attn_mask)

    def encode_image(
            self, images: torch.Tensor, normalize: bool = False,
            attn_mask: Optional[torch.Tensor] = None,
            prompts: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """Features (B, embed_dim) of images (B, 3, H, W).

        Args:
            images (Tensor): The images.
            normalize (bool): L2-normalise the features.
            attn_mask (Tensor, optional): Additive mask over all tokens.
            prompts (Sequence[Tensor], optional): Prompts instead of this
                model's own.
        """
        tower = self.vision_tower
        prompts = self._check_prompts(prompts, 'vision')
        if not tower.takes_prompts:
            if attn_mask is not None:
                raise ValueError(f'attn_mask: {tower.no_prompts_reason}')
            x = tower.visual(images.to(tower.dtype))  # as it is
            return F.normalize(x, dim=-1) if normalize else x
        x, context = tower.embed(images)
        batch = x.shape[0]
        n_v = self.vision_prompt_length if self.vision_prompt_depth else 0
        if n_v:
            x = torch.cat([x, self._prompt(prompts[0], x, batch)], dim=1)
        x = tower.pre_norm(x)
        for i in range(len(tower.blocks)):
            if 1 <= i < self.vision_prompt_depth:
                prompt = self._prompt(prompts[i], x, batch)
                x = torch.cat([x[:, :-n_v], prompt], dim=1)
            x = self._run_block(tower.block_function(i, context, n_v), x,
                                attn_mask)
        x = tower.head(x[:, :x.shape[1] - n_v])
        return F.normalize(x, dim=-1) if normalize else x

    def release_text_tower(self) -> None:
        """Free the text tower and the text prompts."""
        if not self.has_image_tower:
            raise ValueError('a text-only PromptedCLIP cannot release its '
                             'text tower')
        drop_text_tower(self.clip)
        self._text_tower = None
        for name in ('text_ctx', 'text_deep_prompts'):
            if hasattr(self, name):
                delattr(self, name)
        self.text_prompt_depth = 0
        self.has_text_tower = False
        self._text_cache = None

    @property
    def tokenizer(self) -> Tokenizer:
        """SimpleTokenizer | LocalHFTokenizer: The (shared) tokenizer."""
        return text_tokenizer(
            self.clip_architecture['model_cfg'].get('text_cfg', {}))

    def tokenize(self, class_names: Sequence[str]) -> torch.Tensor:
        """Token ids (C, context_length) of ``"{prefix} {name}."``."""
        return tokenize_class_prompts(
            self.tokenizer, self.prompt_prefix, class_names,
            self.text_prompt_length if self.text_prompt_depth else 0,
            vocab_size=self._vocab_size)

    @property
    def _vocab_size(self) -> int:
        """int: Rows of the token embedding."""
        return self.text_tower.module.token_embedding.num_embeddings

    def _tokens(self, class_names: Sequence[str]
                ) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """Token ids, pooled positions and the used length, per class list."""
        # A causal tower reads each feature at one position, so positions
        # after the last of them cannot change the features. Embeddings are
        # looked up at every call so a reloaded token_embedding is used.
        tower = self.text_tower
        key = (tuple(class_names),
               tower.module.token_embedding.weight.device)
        if self._text_cache is None or self._text_cache[0] != key:
            tokens = self.tokenize(class_names)  # on the CPU: read here
            positions = tower.pool_positions(tokens)
            length = tokens.shape[1]
            if self.truncate_text and tower.module.attn_mask is not None:
                length = int(positions.max()) + 1
            self._text_cache = (key, tokens.to(key[1]), positions.to(key[1]),
                                length)
        return self._text_cache[1:]

    def encode_text(
            self, class_names: Sequence[str], normalize: bool = False,
            prompts: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """Prompted text features (C, embed_dim) of class names.

        Args:
            class_names (Sequence[str]): Class names.
            normalize (bool): L2-normalise the features.
            prompts (Sequence[Tensor], optional): Prompts instead of this
                model's own.
        """
        tower = self.text_tower
        module = tower.module
        tokens, positions, length = self._tokens(class_names)
        x = module.token_embedding(tokens[:, :length]).to(
            module.transformer.get_cast_dtype())
        num = x.shape[0]
        n_t = self.text_prompt_length
        prompts = self._check_prompts(prompts, 'text')
        start = self.tokenizer.start  # after the start token, if any
        if self.text_prompt_depth:
            ctx = self._prompt(prompts[0], x, num)
            x = torch.cat([x[:, :start], ctx, x[:, start + n_t:]], dim=1)
        x = x + module.positional_embedding[:length].to(x.dtype)
        attn_mask = module.attn_mask  # causal, or None
        if attn_mask is not None:
            attn_mask = attn_mask[:length, :length]
        for i, block in enumerate(module.transformer.resblocks):
            if 1 <= i < self.text_prompt_depth:
                prompt = self._prompt(prompts[i], x, num)
                x = torch.cat([x[:, :start], prompt, x[:, start + n_t:]],
                              dim=1)
            x = self._run_block(
                batch_first_block(block, module.transformer.batch_first), x,
                attn_mask)
        x = module.ln_final(x)
        x = x[torch.arange(num, device=x.device), positions]
        projection = module.text_projection
        if isinstance(projection, nn.Linear):
            x = projection(x)
        elif projection is not None:
            x = x @ projection
        return F.normalize(x, dim=-1) if normalize else x

    def forward(self, images: torch.Tensor,
                class_names: Sequence[str]) -> torch.Tensor:
        """Cosine logits (B, C) of images against class names."""
        image = self.encode_image(images, normalize=True)
        text = self.encode_text(class_names, normalize=True)
        return self.logit_scale * image @ text.t()

    def prompt_parameters(self) -> Dict[str, nn.Parameter]:
        """The prompt parameters (not CLIP's) by name."""
        return {n: p for n, p in self.named_parameters()
                if not n.startswith('clip.')}

    def load_prompt_checkpoint(self, path: str) -> None:
        """Load prompts (and any ``clip.*`` weights) from a checkpoint of this
        class, or of a teacher classifier (under ``prompted_clip.``); every
        prompt must be there, and nothing else."""
        state, meta = read_model_checkpoint(path, 'PromptedCLIP')
        prefix, outside = 'prompted_clip.', []
        if any(k.startswith(prefix) for k in state):
            outside = sorted(k for k in state if not k.startswith(prefix))
            state = {(k[len(prefix):] if k.startswith(prefix) else k): v
                     for k, v in state.items()}
        num_clip = sum(k.startswith('clip.') for k in state)
        source = prompt_source(self, path, meta,
                               holds_clip_weights=num_clip > 0)
        prompt_keys = set(self.prompt_parameters())
        ours = dict(vision=self.vision_prompt_depth,
                    text=self.text_prompt_depth)
        try:
            load_state_dict_strictly(
                self, state, path, required=sorted(prompt_keys),
                model=f'this PromptedCLIP (vision depth {ours["vision"]}, '
                f'text depth {ours["text"]})', required_name='prompt keys')
        except CheckpointMismatchError as e:
            if outside:
                raise CheckpointMismatchError(
                    f'{e} Keys {outside} of this teacher classifier '
                    'checkpoint are not part of a PromptedCLIP: use the '
                    'classifier type (e.g. MaPLeClassifier) as the '
                    'teacher') from e
            found = {t: (f'{t}_ctx' in state) +
                     sum(k.startswith(f'{t}_deep_prompts.') for k in state)
                     for t in ('vision', 'text')}
            if found == ours:
                raise
            raise CheckpointMismatchError(
                f'{e} The checkpoint has prompts of vision depth '
                f'{found["vision"]} and text depth {found["text"]}: set '
                f'vision_prompt_depth={found["vision"]} and '
                f'text_prompt_depth={found["text"]} (e.g. '
                'model.teacher.*) to load it', e.source) from e
        MMLogger.get_current_instance().info(
            f'Loaded {len(prompt_keys)} prompt tensors and {num_clip} of '
            f'{len(self.state_dict()) - len(prompt_keys)} CLIP tensors from '
            f'{path}')
        self.prompt_source = settle(self, source)


def _check_depth(name: str, depth: int, num_blocks: int) -> None:
    """Refuse a prompt depth beyond the tower's blocks."""
    if not 0 <= depth <= num_blocks:
        raise ValueError(f'{name}={depth} must be between 0 and the number '
                         f'of transformer blocks ({num_blocks})')
