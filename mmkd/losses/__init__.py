from . import timm_losses  # noqa: F401  (registers timm's label losses)
from .bkd import BKDLoss, bkd_loss
from .cwd import ChannelWiseDivergence, cwd_loss
from .dist import DISTLoss, dist_loss
from .dkd import DKDLoss, dkd_loss
from .kd import KDLoss, kd_loss
from .pixel_kd import PixelKDLoss, pixel_kd_loss
from .sigmoid_kd import SigmoidKDLoss, sigmoid_kd_loss

__all__ = [
    'KDLoss', 'kd_loss', 'SigmoidKDLoss', 'sigmoid_kd_loss', 'PixelKDLoss',
    'pixel_kd_loss', 'ChannelWiseDivergence', 'cwd_loss',
    'BKDLoss', 'bkd_loss', 'DKDLoss', 'dkd_loss', 'DISTLoss', 'dist_loss'
]
