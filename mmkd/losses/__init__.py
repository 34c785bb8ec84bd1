from .cwd import ChannelWiseDivergence, cwd_loss
from .kd import KDLoss, kd_loss
from .pixel_kd import PixelKDLoss, pixel_kd_loss
from .sigmoid_kd import SigmoidKDLoss, sigmoid_kd_loss

__all__ = [
    'KDLoss', 'kd_loss', 'SigmoidKDLoss', 'sigmoid_kd_loss', 'PixelKDLoss',
    'pixel_kd_loss', 'ChannelWiseDivergence', 'cwd_loss'
]
