"""Planning the grid, post-processing takes into samples, assembling the Instrument, wavetables."""
