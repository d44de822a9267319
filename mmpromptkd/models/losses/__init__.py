from .feature_distill_loss import FeatureDistillLoss
from .kl_logit_loss import KLLogitLoss

__all__ = ['FeatureDistillLoss', 'KLLogitLoss']
