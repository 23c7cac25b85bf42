"""Low-precision weights: number formats, the quantizer, bit-packing and QAT."""

from fedsparse.quant.packing import pack_codes, packed_length, unpack_codes
from fedsparse.quant.precision import FLOAT32, Precision
from fedsparse.quant.quantizer import (
    channel_scales,
    dequantize,
    fake_quantize,
    quantize,
    quantize_state,
    stochastic_quantize,
)

__all__ = [
    "FLOAT32",
    "Precision",
    "channel_scales",
    "dequantize",
    "fake_quantize",
    "pack_codes",
    "packed_length",
    "quantize",
    "quantize_state",
    "stochastic_quantize",
    "unpack_codes",
]
