from .cls_heads import CNNStageHead, TokenHead, build_stage_heads
from .pyramid import StageToPyramid

__all__ = ['StageToPyramid', 'CNNStageHead', 'TokenHead', 'build_stage_heads']
