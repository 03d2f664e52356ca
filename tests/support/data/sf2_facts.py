"""Facts about 24-bit SoundFonts, for tests/test_sf2.py (facts only, with where each was read).

* [SF204] SoundFont 2.04 specification, section on the sdta-list: the optional ``sm24`` sub-chunk follows
          ``smpl`` and holds the least significant byte of every sample point in ``smpl`` (one byte for every
          two of ``smpl``); it is valid only in files whose ``ifil`` is 2.04 or later, others ignore it.
* [FS]    FluidSynth's SoundFont loader (``fluid_sffile.c``): reads ``sm24`` only when ifil major >= 2 and
          minor >= 4, and only when its size equals half of ``smpl``'s size rounded up to an even number;
          otherwise it warns and plays the 16-bit data.
* [SU]    sf2utils ``sf2parse.py`` files ``smpl`` and ``sm24`` as two entries of sdta and logs "Multiple inside
          SDTA section, using first one" for every 2.04 bank that has ``sm24``.
"""
IFIL_24_BIT = (2, 4)          # [SF204] [FS]
IFIL_16_BIT = (2, 1)
SM24_FOLLOWS = "smpl"         # [SF204]
SF2UTILS_SM24_NOTE = "Multiple inside SDTA section, using first one"   # [SU]


def sm24_size(smpl_bytes: int) -> int:
    """The sm24 size FluidSynth accepts [FS]: half of smpl, rounded up to even."""
    half = smpl_bytes // 2
    return half + half % 2
