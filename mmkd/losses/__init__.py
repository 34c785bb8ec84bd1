from .kd import KDLoss, kd_loss
from .sigmoid_kd import SigmoidKDLoss, sigmoid_kd_loss

__all__ = ['KDLoss', 'kd_loss', 'SigmoidKDLoss', 'sigmoid_kd_loss']
