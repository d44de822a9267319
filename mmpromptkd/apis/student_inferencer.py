"""Class names and scores of images from an exported student alone."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import Compose, default_collate

from mmpromptkd.registry import TRANSFORMS
from .exported_student import load_exported_student, preprocessing


ImageInput = Union[str, np.ndarray]


class StudentInferencer:
    """Classify images with an exported PromptKD student, on any device,
    resized and cropped by :func:`preprocessing`.

    Args:
        model (str): File written by ``export_student.py``.
        classes (Sequence[str], optional): Classify over these names;
            stored ones keep their features (scores renormalised over the
            list), new ones need an export with the text encoder.
        device (str): Device to run on.
        batch_size (int): Images per forward.

    Example:
        >>> inferencer = StudentInferencer('student.pth')
        >>> inferencer(['cat.jpg'])[0]['pred_class']
    """

    def __init__(self, model: str, classes: Optional[Sequence[str]] = None,
                 device: str = 'cpu', batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.model = load_exported_student(model, device=device)
        self.batch_size = batch_size
        if classes is not None:
            self.model.select_classes(classes)
        self.class_names = tuple(self.model.class_names)
        self.pipeline = Compose([
            TRANSFORMS.build(t)
            for t in preprocessing(self.model) + [dict(type='PackInputs')]])
        self._loader = TRANSFORMS.build(dict(type='LoadImageFromFileSafe'))

    def _prepare(self, image: ImageInput) -> dict:
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f'an image array must be H x W x 3 (BGR, '
                                 f'as mmcv reads), got {image.shape}')
            data = dict(img=image, img_shape=image.shape[:2],
                        ori_shape=image.shape[:2])
        else:
            data = self._loader(dict(img_path=str(image)))
        return self.pipeline(data)

    @torch.no_grad()
    def __call__(self, inputs: Union[ImageInput, Sequence[ImageInput]],
                 topk: int = 1) -> List[Dict]:
        """Predict every image.

        Args:
            inputs (str | ndarray | Sequence): Image paths or BGR arrays.
            topk (int): Classes listed per image in ``topk``.

        Returns:
            list[dict]: Per image, ``pred_label``, ``pred_class``,
            ``pred_score``, ``pred_scores`` (softmax) and ``topk``
            (``[(class, score), ...]``).
        """
        if isinstance(inputs, (str, np.ndarray)):
            inputs = [inputs]
        results = []
        for start in range(0, len(inputs), self.batch_size):
            chunk = inputs[start:start + self.batch_size]
            batch = default_collate([self._prepare(x) for x in chunk])
            data = self.model.data_preprocessor(batch, False)
            logits = self.model.student_logits(data['inputs'])
            scores = logits.float().softmax(-1).cpu()
            for row in scores:
                top = row.topk(min(topk, len(row)))
                label = int(top.indices[0])
                results.append(dict(
                    pred_label=label, pred_class=self.class_names[label],
                    pred_score=float(top.values[0]), pred_scores=row.numpy(),
                    topk=[(self.class_names[int(i)], float(v))
                          for v, i in zip(top.values, top.indices)]))
        return results
