from .kl_logit_loss import KLLogitLoss

__all__ = ['KLLogitLoss']
