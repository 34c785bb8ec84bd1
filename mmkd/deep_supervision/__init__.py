from .pyramid import StageToPyramid

__all__ = ['StageToPyramid']
