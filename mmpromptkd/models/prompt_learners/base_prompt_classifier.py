"""Base of the prompted-CLIP teacher classifiers of stage (a)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from mmpromptkd.registry import MODELS
from mmpromptkd.utils import read_model_checkpoint
from mmpromptkd.utils.state_dict_check import (CheckpointMismatchError,
                                               check_state_dict)
from ..clip import PromptedCLIP
from ..clip.data_preprocessor import CLIP_DATA_PREPROCESSOR
from ..clip.class_prompts import encode_class_names, tokenize_prompts
from ..utils import (check_input_normalization, logits_to_data_samples,
                     preprocessor_normalization)
from ..utils.predictions import dispatch_forward
from ..utils.teacher_provenance import PromptSource, prompt_source, settle

#: Values of ``train_subset``; None skips the check.
TRAIN_SUBSETS = ('base', 'all')
#: Attribute name, and checkpoint key prefix, of a classifier's PromptedCLIP.
PROMPTED_CLIP_PREFIX = 'prompted_clip.'
#: Key prefix of the frozen CLIP weights in a classifier's state dict.
FROZEN_CLIP_PREFIX = PROMPTED_CLIP_PREFIX + 'clip.'
#: The PromptedCLIP arguments a classifier passes on.
PROMPT_OPTIONS = ('vision_prompt_depth', 'vision_prompt_length',
                  'text_prompt_depth', 'text_prompt_length', 'ctx_init',
                  'prompt_init_std', 'round_prompts_to_fp16',
                  'reference_fp16', 'grad_checkpointing')


def drop_frozen_clip(module: nn.Module, state_dict: dict, prefix: str,
                     local_metadata: dict) -> None:
    """State-dict hook: leave the frozen CLIP weights out of checkpoints."""
    if module.save_clip_weights:
        return
    start = prefix + FROZEN_CLIP_PREFIX
    for key in [k for k in state_dict if k.startswith(start)]:
        del state_dict[key]


def ignore_missing_frozen_clip(module: nn.Module,
                               incompatible_keys) -> None:
    """Load hook: frozen CLIP weights come from ``clip``, not the file."""
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if FROZEN_CLIP_PREFIX not in k]
    module._eval_text_cache = None


def _check_loaded_state(module: nn.Module, state_dict: dict, prefix: str,
                        *load_args) -> None:
    """Load pre-hook: the state must hold all trained keys, in shape; it may
    hold the frozen CLIP's too."""
    own = {k[len(prefix):]: v
           for k, v in state_dict.items() if k.startswith(prefix)}
    expected = dict(module.state_dict(keep_vars=True))
    required = [k for k in expected if not k.startswith(FROZEN_CLIP_PREFIX)]
    clip_state = module.clip.state_dict(keep_vars=True)
    expected.update({FROZEN_CLIP_PREFIX + k: v for k, v in clip_state.items()})
    check_state_dict(expected, own, None, required=required,
                     model=f'this {type(module).__name__}')


class BasePromptClassifier(BaseModel):
    """A classifier over a :class:`PromptedCLIP` trained on labelled images.

    The base of the stage-(a) teachers and a drop-in teacher of
    :class:`PromptKDDistiller`. ``loss`` is the cross-entropy of cosine
    logits over the training classes (subclasses add terms); ``predict``
    scores the evaluation classes. Checkpoints leave out the frozen CLIP
    unless ``save_clip_weights``; loading is strict about the rest.

    Args:
        clip (dict): Weight source, see :func:`build_clip`.
        train_subset (str, optional): The training classes: 'base', 'all' or
            None (unchecked).
        save_clip_weights (bool): Keep the frozen CLIP in the state dict.
        text_batch_size (int): Class names per no-grad text forward.
        data_preprocessor (dict | nn.Module, optional): Default: CLIP's.
        checkpoint (str, optional): A stage-(a) checkpoint to load.
        init_cfg (dict, optional): Unused; weights come from ``clip``.
        **prompt_options: The :data:`PROMPT_OPTIONS` of
            :class:`PromptedCLIP` (losses stay fp32).
    """

    def __init__(self, clip: dict, train_subset: Optional[str] = 'base',
                 save_clip_weights: bool = False, text_batch_size: int = 256,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None, **prompt_options) -> None:
        unknown = sorted(set(prompt_options) - set(PROMPT_OPTIONS))
        if unknown:
            raise TypeError(f'{type(self).__name__} got unexpected '
                            f'arguments {unknown}')
        if not isinstance(data_preprocessor, nn.Module):
            # Built in our scope so mmpretrain's preprocessors are found.
            data_preprocessor = MODELS.build(data_preprocessor
                                             or CLIP_DATA_PREPROCESSOR)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # Strict whatever the caller asks: a prompt left at its random
        # initial value would silently give a wrong teacher.
        self.register_load_state_dict_pre_hook(_check_loaded_state)
        if train_subset is not None and train_subset not in TRAIN_SUBSETS:
            raise ValueError(f'train_subset must be one of {TRAIN_SUBSETS} '
                             f'or None, got {train_subset!r}')
        if text_batch_size < 1:
            raise ValueError(f'text_batch_size must be >= 1, got '
                             f'{text_batch_size}')
        #: The stage-(a) file the prompts were loaded from, or None.
        self.prompt_source: Optional[PromptSource] = None
        self.prompted_clip = PromptedCLIP(clip=clip, **prompt_options)
        # The teacher interface of PromptKDDistiller (see below).
        self.embed_dim = self.prompted_clip.embed_dim
        self.image_size = self.prompted_clip.image_size
        check_input_normalization(
            self.prompted_clip.input_normalization,
            *preprocessor_normalization(self.data_preprocessor),
            'model.clip', 'model.data_preprocessor')
        self.train_subset = train_subset
        self.save_clip_weights = save_clip_weights
        self.text_batch_size = text_batch_size
        self.train_class_names: Tuple[str, ...] = ()
        self.eval_class_names: Tuple[str, ...] = ()
        self._eval_text_cache: Optional[Tuple[tuple, torch.Tensor]] = None
        self.register_state_dict_post_hook(drop_frozen_clip)
        self.register_load_state_dict_post_hook(ignore_missing_frozen_clip)
        self._add_prompt_modules()
        if checkpoint is not None:
            self.load_prompt_checkpoint(checkpoint)

    def _add_prompt_modules(self) -> None:
        """Trainable modules of a subclass, added before loading."""

    # The teacher interface of PromptKDDistiller.
    @property
    def clip(self) -> nn.Module:
        """nn.Module: The frozen CLIP."""
        return self.prompted_clip.clip

    @property
    def logit_scale(self) -> torch.Tensor:
        """Tensor: ``exp(logit_scale)`` of the CLIP."""
        return self.prompted_clip.logit_scale

    def encode_image(self, images: torch.Tensor,
                     normalize: bool = False) -> torch.Tensor:
        """Prompted image features (B, embed_dim)."""
        return self.prompted_clip.encode_image(images, normalize=normalize)

    def encode_text(self, class_names: Sequence[str],
                    normalize: bool = False) -> torch.Tensor:
        """Prompted text features (C, embed_dim) of class names."""
        return self.prompted_clip.encode_text(class_names, normalize=normalize)

    def extract_feat(self, inputs: torch.Tensor) -> torch.Tensor:
        """Normalised prompted image features (what FLOP counters count)."""
        return self.encode_image(inputs, normalize=True)

    def train(self, mode: bool = True) -> 'BasePromptClassifier':
        """Set the mode; cached evaluation features are dropped."""
        super().train(mode)
        if mode:
            self._eval_text_cache = None
        return self

    def trainable_parameters(self) -> Dict[str, nn.Parameter]:
        """Parameters that training updates, by name."""
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def prepare_text_features(
            self, class_names: Sequence[str], for_training: bool,
            dataset_name: str = 'the dataset',
            class_indices: Optional[Sequence[int]] = None) -> None:
        """Receive the class names of a dataset the model runs on.

        Args:
            class_names (Sequence[str]): Classes in label order.
            for_training (bool): Whether they are the training classes.
            dataset_name (str): Dataset name for messages.
            class_indices (Sequence[int], optional): Unused: a classifier
                encodes any class names.
        """
        names = tuple(class_names)
        if not names:
            raise ValueError(f'{dataset_name} has no classes')
        self._eval_text_cache = None
        if for_training:
            self.train_class_names = names
            self._prepare_training(names, dataset_name)
            MMLogger.get_current_instance().info(
                f'{type(self).__name__}: training on the {len(names)} '
                f'classes of {dataset_name}')
        else:
            self.eval_class_names = names

    def _prepare_training(self, class_names: Tuple[str, ...],
                          dataset_name: str = 'the dataset') -> None:
        """Per-class-list work before training (e.g. frozen features)."""

    def check_training_dataset(self, metainfo: dict,
                               dataset_name: str = 'the dataset') -> None:
        """Refuse training data (``metainfo['subset']``) other than the
        ``train_subset``, or that does not say which subset it is."""
        if self.train_subset is None:
            return
        name = type(self).__name__
        subset = metainfo.get('subset')
        num = len(metainfo.get('classes', ()))
        if subset is None:
            raise ValueError(
                f'{name} must train on the {self.train_subset!r} classes, '
                f'but {dataset_name} does not say which class subset it '
                "holds (no metainfo['subset']); set model.train_subset=None "
                'to train on it anyway')
        if subset != self.train_subset:
            raise ValueError(
                f'{name} has train_subset={self.train_subset!r}, but the '
                f'training dataset {dataset_name} is the {subset!r} subset '
                f"({num} classes): set train_dataloader.dataset.subset='base' "
                "for a base-to-novel teacher, or model.train_subset='all' for "
                "an all-class (cross-dataset) teacher")
        base = metainfo.get('num_base_classes')
        if subset == 'base' and base is not None and num != base:
            raise ValueError(f'{dataset_name} is the base subset but has '
                             f'{num} classes and num_base_classes={base}')

    @torch.no_grad()
    def template_text_features(self, class_names: Sequence[str],
                               templates: Union[str, Sequence[str]]
                               ) -> torch.Tensor:
        """Frozen CLIP text features of filled templates, unnormalised:
        (C, embed_dim) for one template, (T, C, embed_dim) for T of them."""
        single = isinstance(templates, str)
        templates = [templates] if single else list(templates)
        # Not str.format: class names may hold braces.
        texts = [template.replace('{}', name.replace('_', ' '))
                 for template in templates for name in class_names]
        tokenizer = self.prompted_clip.tokenizer
        embedding = self.prompted_clip.text_tower.module.token_embedding
        chunks = []
        for i in range(0, len(texts), self.text_batch_size):
            batch = texts[i:i + self.text_batch_size]
            tokens = tokenize_prompts(
                tokenizer, batch, [f'prompt "{text}"' for text in batch],
                embedding.num_embeddings)
            chunks.append(self.clip.encode_text(
                tokens.to(embedding.weight.device)).float())
        features = torch.cat(chunks).view(len(templates), len(class_names), -1)
        return features[0] if single else features

    def _class_text_features(self,
                             class_names: Sequence[str]) -> torch.Tensor:
        """Normalised text features in float."""
        return self.encode_text(class_names, normalize=True).float()

    def _eval_names(self) -> Tuple[str, ...]:
        """The evaluation classes (else the training ones)."""
        names = self.eval_class_names or self.train_class_names
        if not names:
            raise RuntimeError(
                'class names are not prepared: add PromptKDTextFeaturesHook '
                'to custom_hooks or call prepare_text_features()')
        return names

    def _train_names(self) -> Tuple[str, ...]:
        """The training classes."""
        if not self.train_class_names:
            raise RuntimeError(
                'training classes are not prepared: add '
                'PromptKDTextFeaturesHook to custom_hooks or call '
                'prepare_text_features(class_names, for_training=True)')
        return self.train_class_names

    @torch.no_grad()
    def eval_text_features(self) -> torch.Tensor:
        """Normalised text features of the evaluation classes (cached)."""
        names = self._eval_names()
        device = self.clip.logit_scale.device
        key = (names, device)
        if self._eval_text_cache is None or self._eval_text_cache[0] != key:
            self._eval_text_cache = (key, encode_class_names(
                self, names, self.text_batch_size))
        return self._eval_text_cache[1]

    def logits(self, images: torch.Tensor,
               text_features: torch.Tensor) -> torch.Tensor:
        """Float logits ``exp(s) * normalize(image) @ text.T`` (B, C)."""
        image = self.encode_image(images, normalize=True).float()
        return self.logit_scale.float() * image @ text_features.t()

    def forward(
        self, inputs: torch.Tensor,
        data_samples: Optional[List[DataSample]] = None, mode: str = 'tensor'
    ) -> Union[Dict[str, torch.Tensor], List[DataSample], torch.Tensor]:
        """Losses ('loss', from ``gt_label``), scored DataSamples
        ('predict') or evaluation-class logits ('tensor')."""
        return dispatch_forward(
            self, inputs, data_samples, mode, self.image_size,
            lambda x: self.logits(
                x, self._class_text_features(self._eval_names())))

    def _labels(self, data_samples: Optional[List[DataSample]],
                device: torch.device) -> torch.Tensor:
        """Ground-truth labels of a batch, checked against the classes."""
        if not data_samples:
            raise ValueError(f'{type(self).__name__} trains with labels: '
                             'data_samples with gt_label are needed')
        labels = torch.cat([torch.as_tensor(s.gt_label).reshape(-1)
                            for s in data_samples]).to(device, torch.long)
        num = len(self._train_names())
        if len(labels) != len(data_samples) or labels.min() < 0 or \
                labels.max() >= num:
            raise ValueError(
                f'labels {labels.tolist()} do not fit the {num} training '
                'classes (one label in [0, classes) per image is needed)')
        return labels

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """``{'loss_ce': loss}``: cross-entropy over the training classes."""
        names = self._train_names()
        text = self._class_text_features(names)
        logits = self.logits(inputs, text)
        labels = self._labels(data_samples, logits.device)
        return dict(loss_ce=F.cross_entropy(logits, labels))

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """``pred_score``/``pred_label`` over the evaluation classes."""
        return logits_to_data_samples(
            self.logits(inputs, self.eval_text_features()), data_samples)

    def load_prompt_checkpoint(self, path: str) -> None:
        """Load a checkpoint (or bare state dict) of this classifier, or of a
        :class:`PromptedCLIP`; every non-CLIP key must be there, and CLIP
        keys replace the CLIP weights."""
        name = type(self).__name__
        state, meta = read_model_checkpoint(path, name)
        if state and not any(k.startswith(PROMPTED_CLIP_PREFIX)
                             for k in state):
            state = {PROMPTED_CLIP_PREFIX + k: v for k, v in state.items()}
        num_clip = sum(k.startswith(FROZEN_CLIP_PREFIX) for k in state)
        source = prompt_source(self, path, meta,
                               holds_clip_weights=num_clip > 0)
        try:  # checked by _check_loaded_state before anything loads
            self.load_state_dict(state)
        except CheckpointMismatchError as e:
            raise CheckpointMismatchError(f'{path}: {e}', path) from e
        MMLogger.get_current_instance().info(
            f'Loaded {len(state) - num_clip} prompt tensors and {num_clip} '
            f'CLIP tensors into {name} from {path}')
        self.prompt_source = settle(self, source)
