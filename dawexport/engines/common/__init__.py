"""What every engine shares, written once: the trainer and its log, torch plumbing, model files with checksums, the
velocity law, envelopes and seeding. Engines import from these modules; nothing here imports an engine."""
