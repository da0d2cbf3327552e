"""How loud each tone is in what a participant heard (FFT), for the room tests."""

from __future__ import annotations

from array import array

import numpy as np

RATE = 48_000


def tone_levels(samples: array[int], frequencies: list[float]) -> dict[float, float]:
    """The magnitude at each frequency relative to the strongest bin (0..1)."""
    signal = np.asarray(samples, dtype=float)
    if signal.size < RATE // 4:
        return {frequency: 0.0 for frequency in frequencies}
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    bins = np.fft.rfftfreq(signal.size, 1 / RATE)
    peak = float(spectrum.max()) or 1.0
    levels = {}
    for frequency in frequencies:
        near = (bins > frequency - 15) & (bins < frequency + 15)
        levels[frequency] = float(spectrum[near].max()) / peak
    return levels
