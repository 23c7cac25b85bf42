"""A device's number format: b-bit integers on a per-channel grid, float16 or float32.

The YAML speaks in bitwidths (docs/methods.md §1): 32 is float32, 16 is float16 (no integer
grid), 2–15 are signed integers. The library also knows 16-bit integers
(``Precision(16, "int")``), e.g. as an intermediate rung of ProWD's bit ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MIN_INT_BITS = 2
MAX_INT_BITS = 16


@dataclass(frozen=True)
class Precision:
    bits: int
    kind: Literal["int", "float"]

    def __post_init__(self) -> None:
        if self.kind == "float" and self.bits not in (16, 32):
            raise ValueError(f"float formats are 16 or 32 bits, not {self.bits}")
        if self.kind == "int" and not MIN_INT_BITS <= self.bits <= MAX_INT_BITS:
            raise ValueError(f"integer formats have {MIN_INT_BITS}..{MAX_INT_BITS} bits, not {self.bits}")

    @classmethod
    def from_bitwidth(cls, bitwidth: int) -> Precision:
        """The config's meaning of a bitwidth: 32 → float32, 16 → float16, else int."""
        if bitwidth in (16, 32):
            return cls(bitwidth, "float")
        return cls(bitwidth, "int")

    @property
    def rank(self) -> tuple[int, bool]:
        """Sort key from least to most precise (int16 below float16 below float32)."""
        return (self.bits, self.kind == "float")

    @property
    def is_high(self) -> bool:
        """Float formats: the "high-precision" clients of ProWD and the grouped baselines."""
        return self.kind == "float"

    @property
    def is_float32(self) -> bool:
        return self.kind == "float" and self.bits == 32

    @property
    def qmax(self) -> int:
        """Largest integer code, 2^(b-1) - 1; the grid is [-(qmax + 1), qmax]."""
        if self.kind != "int":
            raise ValueError(f"{self} has no integer grid")
        return 2 ** (self.bits - 1) - 1

    @property
    def label(self) -> str:
        """Key in ``accuracy_by_bitwidth`` (the YAML bitwidth; ``int16`` for 16-bit ints)."""
        return "int16" if self.kind == "int" and self.bits == 16 else str(self.bits)

    def __str__(self) -> str:
        return f"{self.kind}{self.bits}"


FLOAT32 = Precision(32, "float")
