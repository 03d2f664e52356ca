"""The one velocity law every engine plays by: velocity 1..127 spread over the whole dB range.

    >>> velocity_db(127, 40.0), velocity_db(1, 40.0)
    (-0.0, -40.0)
    >>> round(velocity_gain(64, 40.0), 4)
    0.1
"""
from __future__ import annotations


def velocity_db(velocity: int, range_db: float) -> float:
    """dB relative to the loudest playing: 0 at 127, -range_db at 1 (clamped to 1..127)."""
    v = min(max(int(velocity), 1), 127)
    return -range_db * (1.0 - (v - 1) / 126.0)


def velocity_gain(velocity: int, range_db: float) -> float:
    """`velocity_db` as an amplitude factor."""
    return 10.0 ** (velocity_db(velocity, range_db) / 20.0)
