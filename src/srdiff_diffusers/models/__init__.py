from .rrdb_encoder import RRDBEncoder, RRDBEncoderOutput
from .unet_srdiff import SRDiffUNet2DModel

__all__ = ["RRDBEncoder", "RRDBEncoderOutput", "SRDiffUNet2DModel"]
