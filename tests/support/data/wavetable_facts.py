"""Facts about wavetable WAVs that Serum itself wrote, and what Vital and Surge XT read, for
tests/test_wavetable.py. Facts only (sizes, positions, text layout), with where each was read.

* [SF]  Notes of public projects that inspected Serum's factory tables byte for byte (Serum 1 ``Tables`` and
        the 288 tables Serum 2 installs): mono, 32-bit IEEE float (format tag 3), frames of 2048 samples,
        and a ``clm `` chunk whose text is ``<!>2048 `` + 8 flag digits + `` wavetable (www.xferrecords.com)``
        (``01000000`` in Serum 1's, ``11000000``/``21000000`` in Serum 2's): 48 bytes, so no pad byte.
* [R12] dawexport issue 12's structural review of Serum-saved tables: the ``clm `` chunk comes right after
        ``fmt `` (before ``fact``/``PEAK``/``data``), 48 bytes.
* [V]   Vital ``wavetable_edit_section.cpp`` (``getFadeStyleFromWavetableString``): reads the first flag
        digit (0 none, 1 time, else frequency interpolation) and cuts 2048-sample frames; Vital writes
        ``<!>2048 20000000 wavetable (vital.audio)`` itself.
* [S]   Surge XT ``WAVFileSupport.cpp``: a ``clm `` chunk makes the file a 2048-sample table only when the
        four characters after ``<!>`` are ``2048``; it walks every top-level chunk.
"""
CLM_SIZE = 48                        # [SF] [R12]
CLM_FOLLOWS = "fmt "                 # [R12]
CLM_PREFIX = "<!>2048 "              # [SF] [S]
CLM_FLAG_DIGITS = 8                  # [SF]
CLM_FLAG_INTERPOLATION = {"0": "none", "1": "linear crossfade", "2": "spectral", "3": "spectral",
                          "4": "spectral"}   # [SF] [V]
CLM_FACTORY_DIGIT = 1                # index of the factory flag in the 8 digits; user tables leave it 0 [SF]
SERUM_VENDOR = " wavetable (www.xferrecords.com)"   # [SF]: what follows the flags in Serum's own tables
FORMAT_TAG_FLOAT, CHANNELS, BITS = 3, 1, 32          # [SF]
FRAME = 2048                                          # [SF] [V] [S]
