"""How closely the student follows its teacher on images without labels."""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from mmpromptkd.registry import METRICS


@METRICS.register_module()
class TeacherStudentAgreement(BaseMetric):
    """Agreement of student and teacher predictions, a label-free signal:
    ``top1`` (% of images whose top classes agree) and ``kl`` (mean
    ``KL(p_teacher || p_student)`` in nats). Needs
    ``model.predict_teacher=True`` on a distiller with its teacher. Takes
    the arguments of mmengine's ``BaseMetric``.
    """
    default_prefix: Optional[str] = 'agreement'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            student = sample.get('pred_score', None)
            teacher = sample.get('teacher_score', None)
            if student is None or teacher is None:
                raise ValueError(
                    'TeacherStudentAgreement needs pred_score and '
                    'teacher_score in every prediction: set '
                    'model.predict_teacher=True on a PromptKDDistiller that '
                    'has its teacher')
            student = torch.as_tensor(student).float().cpu()
            teacher = torch.as_tensor(teacher).float().cpu()
            if student.shape != teacher.shape:
                raise ValueError(f'TeacherStudentAgreement: student scores '
                                 f'{tuple(student.shape)} and teacher scores '
                                 f'{tuple(teacher.shape)} differ in shape')
            # KL(teacher || student); kl_div takes 0 * log 0 as 0, and the
            # clamp keeps a zero student probability finite.
            kl = F.kl_div(student.clamp_min(1e-38).log(), teacher,
                          reduction='sum')
            self.results.append(
                (bool(student.argmax() == teacher.argmax()), float(kl)))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        if not results:
            raise ValueError('TeacherStudentAgreement: no image was '
                             'evaluated')
        agree = sum(a for a, _ in results)
        return dict(
            top1=100.0 * agree / len(results),
            kl=sum(k for _, k in results) / len(results))
