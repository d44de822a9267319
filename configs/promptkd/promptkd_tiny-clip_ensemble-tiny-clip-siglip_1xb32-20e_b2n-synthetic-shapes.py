# The offline demo distilled from a teacher ensemble: the demo's prompted CLIP
# teacher and its prompted SigLIP-style teacher (a timm tower with attention
# pooling, another family), each prompted by its own stage-(a) run, weighted
# per image by their confidence (docs/teacher_ensembles.md). The student's
# text features come from the first member.
_base_ = ['./promptkd_tiny-clip_1xb32-20e_b2n-synthetic-shapes.py']

model = dict(
    teacher=dict(
        _delete_=True,
        type='TeacherEnsemble',
        weighting='confidence',
        confidence='max_prob',
        members=[
            # The base config's CLIP teacher (its stage-(a) checkpoint).
            dict(teacher={{_base_.model.teacher}}),
            dict(teacher=dict(
                type='PromptedCLIP',
                clip=dict(
                    model_cfg={{_base_.tiny_siglip_clip}},
                    quick_gelu=True,
                    checkpoint={{_base_.tiny_siglip_clip_checkpoint}}),
                vision_prompt_depth=3,
                vision_prompt_length=4,
                text_prompt_depth=3,
                text_prompt_length=4,
                checkpoint=None)),  # the SigLIP-style stage-(a) checkpoint
        ]))
