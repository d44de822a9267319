# Tiny CLIPs for the offline CPU demo and the tests: a "large" teacher and a
# "small" student defined by open_clip config dicts. The PromptKD model below
# loads their pre-trained weights by default; set clip.checkpoint=None for
# random weights.
tiny_student_clip = dict(
    embed_dim=64,
    vision_cfg=dict(
        image_size=32, patch_size=8, width=64, layers=4, head_width=32),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=64, heads=2, layers=4))
tiny_teacher_clip = dict(
    embed_dim=96,
    vision_cfg=dict(
        image_size=32, patch_size=8, width=128, layers=6, head_width=32),
    text_cfg=dict(
        context_length=77, vocab_size=49408, width=128, heads=4, layers=6))
# A second family, built like SigLIP: a timm ViT tower (no class token, one
# register token, attention-pool head; mmpromptkd/models/clip/tiny_timm_vit.py),
# a bidirectional text tower pooled at the last position, a logit bias and
# the sigmoid loss. Between the two models above in zero-shot accuracy, it
# serves as teacher of the CLIP student and as student of the CLIP teacher
# in the cross-family rows of the synthetic benchmark. Its logit bias starts
# at -5, not SigLIP's -10: at the initial logit scale of 10 a bias of -10
# leaves a matching pair at most at logit 0, and 400 steps cannot grow the
# scale enough (zero-shot HM 42 instead of 69).
tiny_siglip_clip = dict(
    embed_dim=96,
    init_logit_bias=-5.0,
    vision_cfg=dict(
        image_size=32,
        timm_model_name='vit_tiny_patch8_32_map_shapes',
        timm_model_pretrained=False,
        timm_pool='map',
        timm_proj='none'),
    text_cfg=dict(
        context_length=16, vocab_size=49408, width=96, heads=3, layers=6,
        no_causal_mask=True, pool_type='last', proj_bias=True))
# Contrastively pre-trained weights of the two models above (fp16, made by
# tools/misc/pretrain_tiny_clip.py, see checkpoints/tiny_clip/README.md).
# Use them as clip=dict(model_cfg=tiny_teacher_clip, quick_gelu=True,
# checkpoint=tiny_teacher_clip_checkpoint). The paths are resolved from this
# file, so they work from any working directory.
tiny_teacher_clip_checkpoint = \
    '{{ fileDirname }}/../../../checkpoints/tiny_clip/tiny_clip_teacher.pth'
tiny_student_clip_checkpoint = \
    '{{ fileDirname }}/../../../checkpoints/tiny_clip/tiny_clip_student.pth'
tiny_siglip_clip_checkpoint = \
    '{{ fileDirname }}/../../../checkpoints/tiny_clip/tiny_siglip_clip.pth'

model = dict(
    type='PromptKDDistiller',
    # Build in our scope also when called from mmpretrain (mmpretrain.apis).
    _scope_='mmpromptkd',
    student=dict(
        type='PromptedCLIP',
        clip=dict(
            model_cfg=tiny_student_clip,
            quick_gelu=True,
            checkpoint=tiny_student_clip_checkpoint),
        vision_prompt_depth=3,
        vision_prompt_length=4),
    teacher=dict(
        type='PromptedCLIP',
        # Replaced by the CLIP saved in a stage-(a) checkpoint when
        # `checkpoint` is set (save_clip_weights=True there).
        clip=dict(
            model_cfg=tiny_teacher_clip,
            quick_gelu=True,
            checkpoint=tiny_teacher_clip_checkpoint),
        vision_prompt_depth=3,
        vision_prompt_length=4,
        text_prompt_depth=3,
        text_prompt_length=4,
        checkpoint=None),
    projector=dict(type='FeatureProjector'),
    distill_loss=dict(type='KLLogitLoss', tau=1.0, loss_weight=1000.0),
)
