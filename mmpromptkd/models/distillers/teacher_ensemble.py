"""Several frozen teachers as one distillation target."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from mmpromptkd.registry import MODELS
from ..utils.input_normalization import teacher_input_map, teacher_view
from ..clip.class_prompts import encode_class_names

WEIGHTINGS = ('equal', 'fixed', 'confidence')
CONFIDENCES = ('max_prob', 'neg_entropy')


def combine_teacher_logits(logits: Sequence[torch.Tensor],
                           taus: Sequence[float], tau: float,
                           weights: Optional[Sequence[float]] = None,
                           confidence: Optional[str] = None,
                           confidence_tau: float = 1.0) -> torch.Tensor:
    """(B, C) logits ``tau * log(sum_m w_m * softmax(z_m / tau_m))``,
    whose distribution at ``tau`` is the members' mixture (one member's are
    returned unchanged); see docs/teacher_ensembles.md.

    Args:
        logits (Sequence[Tensor]): One (B, C) tensor per member.
        taus (Sequence[float]): The members' temperatures.
        tau (float): The temperature the loss applies to the result.
        weights (Sequence[float], optional): Fixed weights, used when
            ``confidence`` is None.
        confidence (str, optional): Per-sample weights
            ``softmax_m(c_m / confidence_tau)`` from 'max_prob' or
            'neg_entropy' of each member's distribution.
        confidence_tau (float): Temperature of the confidence softmax.
    """
    if len(logits) == 1:
        return logits[0]
    log_p = torch.stack([F.log_softmax(z.float() / t, dim=-1)
                         for z, t in zip(logits, taus)])  # (M, B, C)
    if confidence is None:
        log_w = torch.tensor(
            [float(w) for w in weights], device=log_p.device).log()
        log_w = log_w[:, None].expand(log_p.shape[:2])
    else:
        p = log_p.exp()
        score = p.amax(-1) if confidence == 'max_prob' else \
            (p * log_p).sum(-1)
        log_w = F.log_softmax(score / confidence_tau, dim=0)  # (M, B)
    return tau * torch.logsumexp(log_w[..., None] + log_p, dim=0)


@dataclass(frozen=True)
class EnsembleCombination:
    """How an ensemble mixes its members' distributions, checked once.

    The online :class:`TeacherEnsemble` and a run on its members' caches
    both come from :meth:`from_config`, so they mix alike and record the
    same identity. Fields are :class:`TeacherEnsemble`'s arguments, per
    member; ``members`` holds each ``teacher`` (as built) and
    ``normalization``.
    """
    weighting: str
    weights: Tuple[float, ...]
    taus: Tuple[Optional[float], ...]
    confidence: str
    confidence_tau: float
    text_member: int
    members: Tuple[dict, ...]

    @classmethod
    def from_config(cls, members: List[dict], weighting: str = 'equal',
                    confidence: str = 'max_prob', confidence_tau: float = 1.0,
                    text_member: int = 0,
                    reference_fp16: bool = False) -> 'EnsembleCombination':
        """Check an ensemble's settings (see :class:`TeacherEnsemble`)."""
        if not isinstance(members, (list, tuple)) or not members:
            raise ValueError('TeacherEnsemble.members: a non-empty list of '
                             f'dict(teacher=...), got {members!r}')
        if weighting not in WEIGHTINGS:
            raise ValueError(f'TeacherEnsemble.weighting must be one of '
                             f'{WEIGHTINGS}, got {weighting!r}')
        if confidence not in CONFIDENCES:
            raise ValueError(f'TeacherEnsemble.confidence must be one of '
                             f'{CONFIDENCES}, got {confidence!r}')
        if not confidence_tau > 0:
            raise ValueError('TeacherEnsemble.confidence_tau must be > 0, '
                             f'got {confidence_tau!r}')
        if not 0 <= text_member < len(members):
            raise ValueError(f'TeacherEnsemble.text_member={text_member} is '
                             f'not one of the {len(members)} members')
        built, weights, taus = zip(*[_member_spec(i, m, reference_fp16)
                                     for i, m in enumerate(members)])
        if weighting == 'fixed':
            if any(w is None for w in weights):
                raise ValueError("weighting='fixed' needs a weight for every "
                                 'member (members[i].weight)')
            if any(w < 0 for w in weights) or abs(sum(weights) - 1) > 1e-6:
                raise ValueError(f'TeacherEnsemble member weights must be '
                                 f'>= 0 and sum to 1, got {list(weights)} '
                                 f'(sum {sum(weights)})')
        elif any(w is not None for w in weights):
            raise ValueError(f'members[i].weight is for weighting=\'fixed\'; '
                             f'this ensemble weighs by {weighting!r}')
        if weighting == 'equal':
            weights = (1.0 / len(built), ) * len(built)
        return cls(weighting, weights, taus, confidence,
                   float(confidence_tau), text_member, built)

    def combine(self, logits: Sequence[torch.Tensor],
                tau: float) -> torch.Tensor:
        """The members' (B, C) logits mixed at the loss's ``tau``."""
        return combine_teacher_logits(
            logits, [tau if t is None else t for t in self.taus], tau,
            self.weights,
            self.confidence if self.weighting == 'confidence' else None,
            self.confidence_tau)

    def record(self) -> dict:
        """dict: The settings that identify the mix (for provenance)."""
        return dict(weighting=self.weighting, weights=list(self.weights),
                    taus=list(self.taus), confidence=self.confidence,
                    confidence_tau=self.confidence_tau,
                    text_member=self.text_member)


@MODELS.register_module()
class TeacherEnsemble(nn.Module):
    """Frozen teachers of any family whose class distributions are mixed.

    Each member classifies the batch with its own image view and text
    features; :func:`combine_teacher_logits` mixes the results. The student
    shares the text features of ``text_member``. An ensemble of one is that
    teacher, bit for bit. See docs/teacher_ensembles.md.

    Args:
        members (list[dict]): Per member: ``teacher`` (a
            :class:`PromptedCLIP` config by default), and optionally
            ``weight`` (for 'fixed'), ``tau`` (default: the loss's) and
            ``normalization`` (``dict(mean=..., std=...)``, 0-255; default:
            what its weights declare, else the data preprocessor's).
        weighting (str): 'equal', 'fixed' or 'confidence'.
        confidence (str): 'max_prob' or 'neg_entropy' (for 'confidence').
        confidence_tau (float): Temperature of the confidence weights.
        text_member (int): The member whose text features are shared.
        reference_fp16 (bool): Passed on to every member.
        text_batch_size (int): Class names per text forward of the others.
    """

    def __init__(self, members: List[dict], weighting: str = 'equal',
                 confidence: str = 'max_prob', confidence_tau: float = 1.0,
                 text_member: int = 0, reference_fp16: bool = False,
                 text_batch_size: int = 256) -> None:
        super().__init__()
        self.combination = EnsembleCombination.from_config(
            members, weighting, confidence, confidence_tau, text_member,
            reference_fp16)
        if text_batch_size < 1:
            raise ValueError('TeacherEnsemble.text_batch_size must be >= 1, '
                             f'got {text_batch_size}')
        self.text_batch_size = text_batch_size
        self.members = nn.ModuleList(
            MODELS.build(m['teacher']) for m in self.combination.members)
        # Per member: the map from the student's images (bind_inputs).
        self._input_maps: List[Optional[tuple]] = [None] * len(self.members)
        self._text_cache: Dict[tuple, torch.Tensor] = {}
        #: The member whose text features the student shares.
        self.text_member = self.combination.text_member
        #: Width of the shared text features.
        self.embed_dim = self.members[self.text_member].embed_dim

    # The teacher interface the distiller's text table uses: the text member.
    @property
    def has_text_tower(self) -> bool:
        """bool: Whether every member can encode class names."""
        return all(getattr(m, 'has_text_tower', True) for m in self.members)

    def encode_text(self, class_names: Sequence[str],
                    normalize: bool = False) -> torch.Tensor:
        """The text member's features of ``class_names``."""
        return self.members[self.text_member].encode_text(
            class_names, normalize=normalize)

    def member_normalization(self, index: int) -> Optional[dict]:
        """The normalisation (0-255) member ``index`` takes its images with:
        as configured, else as its weights declare; None: the data
        preprocessor's."""
        configured = self.combination.members[index]['normalization']
        declared = getattr(self.members[index], 'input_normalization', None)
        if configured is not None or declared is None:
            return configured
        return {key: [float(v) * 255 for v in values]
                for key, values in zip(('mean', 'std'), declared)}

    def bind_inputs(self, data_preprocessor: nn.Module,
                    student: nn.Module) -> None:
        """Prepare each member's map from the student's images; refuse a
        member that would get images normalised otherwise than it expects."""
        for i, member in enumerate(self.members):
            try:
                self._input_maps[i] = teacher_input_map(
                    data_preprocessor, student, member,
                    self.member_normalization(i))
            except ValueError as e:
                raise ValueError(f'TeacherEnsemble.members[{i}]: {e}') from e

    def member_logits(self, inputs: torch.Tensor, class_names: Sequence[str],
                      text_features: torch.Tensor,
                      only: Optional[int] = None) -> List[torch.Tensor]:
        """Each member's (B, C) float32 logits over ``class_names``.

        Args:
            inputs (Tensor): The student's normalised images (B, 3, H, W).
            class_names (Sequence[str]): The classes.
            text_features (Tensor): The text member's (stored) features.
            only (int, optional): Compute only this member's logits.
        """
        out = []
        for i, member in enumerate(self.members):
            if only is not None and i != only:
                continue
            text = text_features if i == self.text_member else \
                self.member_text_features(i, class_names)
            view = teacher_view(inputs, member.image_size, self._input_maps[i])
            features = F.normalize(member.encode_image(view), dim=-1)
            out.append(member.logit_scale.float() *
                       features.float() @ text.t().to(features.device).float())
        return out

    def logits(self, inputs: torch.Tensor, class_names: Sequence[str],
               text_features: torch.Tensor, tau: float) -> torch.Tensor:
        """The ensemble's (B, C) target logits at the loss's ``tau``."""
        return self.combination.combine(
            self.member_logits(inputs, class_names, text_features), tau)

    @torch.no_grad()
    def member_text_features(self, index: int,
                             class_names: Sequence[str]) -> torch.Tensor:
        """Member ``index``'s own text features of ``class_names``, encoded
        once per class list (the text member's are the distiller's)."""
        key = (index, tuple(class_names))
        if key not in self._text_cache:
            self._text_cache[key] = encode_class_names(
                self.members[index], list(class_names), self.text_batch_size)
        return self._text_cache[key]


def _member_spec(index: int, member: dict,
                 reference_fp16: bool) -> Tuple[dict, float, float]:
    """One member's ``dict(teacher, normalization)`` (``teacher`` as it is
    built), weight and tau, checked."""
    allowed = {'teacher', 'weight', 'tau', 'normalization'}
    if not isinstance(member, dict) or 'teacher' not in member or \
            set(member) - allowed:
        raise ValueError(
            f'TeacherEnsemble.members[{index}]: expected dict(teacher=..., '
            f'[weight=..., tau=..., normalization=...]), got {member!r}')
    tau = member.get('tau')
    if tau is not None and not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f'TeacherEnsemble.members[{index}].tau must be > 0, '
                         f'got {tau!r}')
    weight = member.get('weight')
    if weight is not None and not isinstance(weight, (int, float)):
        raise ValueError(f'TeacherEnsemble.members[{index}].weight must be a '
                         f'number, got {weight!r}')
    teacher = {'type': 'PromptedCLIP', **member['teacher'],
               **(dict(reference_fp16=True) if reference_fp16 else {})}
    return (dict(teacher=teacher, normalization=member.get('normalization')),
            None if weight is None else float(weight),
            None if tau is None else float(tau))
