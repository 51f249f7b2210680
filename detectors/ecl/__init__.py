"""ECL (seeds/003): the detector and its ASR/VSR teachers."""
from detectors.ecl.detector import ECL, ECLConfig

__all__ = ["ECL", "ECLConfig"]
