"""The deployed student as one graph: pixels -> logits (and features)."""
from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn


class StudentGraph(nn.Module):
    """A trained student, its projector and the stored text features, as
    one graph an exporter (ONNX) traces.

    The forward takes float RGB pixels in ``[0, 255]``, ``(B, 3, H, W)``,
    resized and cropped as the test pipeline does, and returns ``logits``
    (B, C) over ``model.class_names`` (and normalised ``features``).

    Args:
        model (nn.Module): A :class:`PromptKDDistiller` with stored text
            features and a projector.
        with_features (bool): Also return the image features.
    """

    def __init__(self, model: nn.Module, with_features: bool = False) -> None:
        super().__init__()
        if getattr(model, 'projector', None) is None:
            raise ValueError(
                f'{type(model).__name__} has no projector: only a student '
                'that classifies with the stored teacher text features '
                '(shared_text_features=True) is one graph')
        if len(getattr(model, 'text_features', ())) == 0:
            raise ValueError('the model has no stored text features: export '
                             'a trained student (export_student.py), or '
                             'prepare the features with its teacher first')
        preprocessor = model.data_preprocessor
        self.student = model.student
        self.projector = model.projector
        self.with_features = with_features
        self.register_buffer('mean', preprocessor.mean.detach().clone())
        self.register_buffer('std', preprocessor.std.detach().clone())
        self.register_buffer('text_features',
                             model.text_features.detach().float().clone())
        self.register_buffer(
            'logit_scale', model.student.logit_scale.detach().float().clone())
        self.class_names = tuple(model.class_names)
        size = getattr(model.student, 'image_size', None)  # CNNs: any
        self.image_size = None if size is None else tuple(size)

    def forward(self, images: torch.Tensor
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        inputs = (images - self.mean) / self.std
        features = self.student.encode_image(inputs).float()
        features = F.normalize(self.projector(features), dim=-1)
        logits = self.logit_scale * features @ self.text_features.t()
        return (logits, features) if self.with_features else logits

    def export_onnx(self, opset: int = 18):
        """The ONNX model (``onnx.ModelProto``) of this graph, with a
        dynamic batch (torch's dynamo exporter; needs ``onnxscript``)."""
        if self.image_size is None:
            raise ValueError('the student has no fixed image size (a CNN '
                             'student); only ViT students are exported')
        example = torch.zeros(2, 3, *self.image_size)
        batch = torch.export.Dim('batch', min=1, max=65536)
        outputs = ['logits', 'features'] if self.with_features else ['logits']
        program = torch.onnx.export(
            self.eval(), (example, ), input_names=['images'],
            output_names=outputs, opset_version=opset, dynamo=True,
            dynamic_shapes={'images': {0: batch}}, verbose=False)
        return program.model_proto
