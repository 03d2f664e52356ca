"""Re-timing a recorded sound's frame tracks (latents, loudness, pitch) to a note of any length.

A source is cut by its loudness into segments: onset (first frame within 40 dB of the loudest), attack (up
to the first frame within `attack_db` of the loudest), sustain (up to the last frame within `sustain_db` of
it) and release (to the last frame above the floor). A note then reads the source through a *time map*,
one fractional source frame per note frame:

- the attack plays as recorded (a blend stretches each corner's attack to the weighted mean length);
- the held part wanders back and forth through the sustain segment with turns at irregular points, at
  most as fast as recorded, so no stretch repeats exactly and the position never jumps; it arrives at the
  end of the sustain segment at note-off (a note shorter than the source plays its sustain faster);
- after note-off the release plays as recorded, so the sound decays the way the source did;
- a note held for about the source's own length plays it as recorded, frame for frame, the way a sampler
  plays its sample: from attack + sustain on, each frame more of holding plays one more frame of the release
  (and then the quiet tail) before note-off, up to the source's full length; past that the release moves
  back after note-off and the extra time goes to the sustain (`early_release`), so the map changes
  smoothly with the note's length.

    >>> loud = np.concatenate([np.linspace(-80, 0, 10), np.zeros(20), np.linspace(0, -80, 10)])
    >>> seg = find_segments(loud)
    >>> (seg.onset, seg.attack_end, seg.release_start, seg.end, seg.frames)
    (5, 9, 31, 35, 40)
    >>> pos = time_map([seg], [1.0], held_frames=100, total_frames=110)[0]
    >>> pos[:4].tolist(), float(pos[99]) == seg.release_start, float(np.abs(np.diff(pos)).max()) <= 1.0
    ([5.0, 6.0, 7.0, 8.0], True, True)
    >>> in_time = time_map([seg], [1.0], held_frames=40, total_frames=50)[0]     # held for its own length
    >>> bool(np.all(in_time[:35] == seg.onset + np.arange(35)))
    True
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ONSET_DB = 40.0
ATTACK_DB = 3.0
SUSTAIN_DB = 10.0
END_DB = 50.0
TURN_SMOOTHING = 0.6          # 0: straight ping-pong; 1: the position stops at each turn


@dataclass(frozen=True)
class Segments:
    """Frame indices of a source: onset ≤ attack_end ≤ release_start ≤ end < frames (its length)."""
    onset: int
    attack_end: int
    release_start: int
    end: int
    length: int = 0                       # frames in the track; 0: end + 1

    @property
    def frames(self) -> int:
        return max(self.length, self.end + 1)

    @property
    def after(self) -> int:
        """Frames after the sustain: the release and the quiet tail to the track's last frame."""
        return self.frames - 1 - self.release_start

    @property
    def attack(self) -> int:
        return self.attack_end - self.onset

    @property
    def sustain(self) -> int:
        return self.release_start - self.attack_end

    @property
    def release(self) -> int:
        return self.end - self.release_start


def find_segments(loudness_db: np.ndarray, attack_db: float = ATTACK_DB, sustain_db: float = SUSTAIN_DB,
                  onset_db: float = ONSET_DB, end_db: float = END_DB) -> Segments:
    """Onset, attack end, release start and end of a loudness track (dB per frame), by thresholds below its
    loudest frame (see the module docstring). Short dips inside the sustain do not end it."""
    loud = np.asarray(loudness_db, np.float64)
    if len(loud) == 0:
        return Segments(0, 0, 0, 0, 0)
    top = float(loud.max())
    onset = int(np.argmax(loud >= top - onset_db))
    attack_end = max(onset, int(np.argmax(loud >= top - attack_db)))
    held = np.flatnonzero(loud >= top - sustain_db)
    release_start = max(attack_end, int(held[-1]))
    audible = np.flatnonzero(loud >= top - end_db)
    end = max(release_start, int(audible[-1]))
    return Segments(onset, attack_end, release_start, end, len(loud))


def _turn_points(lo: float, hi: float, distance: float, rng: np.random.Generator | None) -> np.ndarray:
    """lo → (irregular turns) → hi, covering about `distance` frames of travel in total."""
    span = hi - lo
    points = [lo]
    travelled = 0.0
    rng = rng or np.random.default_rng(0)
    while travelled + span < distance:
        top = lo + span * rng.uniform(0.65, 1.0)
        bottom = lo + span * rng.uniform(0.0, 0.35)
        if travelled + (top - points[-1]) + (top - bottom) + (hi - bottom) > distance:
            break
        travelled += (top - points[-1]) + (top - bottom)
        points += [top, bottom]
    back = 0.5 * (distance - travelled - (hi - points[-1]))    # time left over: one shorter turn, anywhere
    if back > 0.02 * span:
        back = min(back, span)
        top = rng.uniform(max(points[-1], lo + back), hi)
        points += [top, top - back]
    points.append(hi)
    return np.asarray(points)


def _wander(lo: float, hi: float, frames: int, rng: np.random.Generator | None, speed: float) -> np.ndarray:
    """`frames` positions from lo to hi (ending exactly at hi), going back and forth if there is time."""
    if frames <= 1:
        return np.full(frames, float(hi))
    span = hi - lo
    steps = frames - 1                                                # first frame at lo, last at hi
    if span <= 0 or steps <= span / speed:
        return lo + span * (np.arange(frames) / steps)
    points = _turn_points(lo, hi, steps * speed, rng)
    legs = np.abs(np.diff(points))
    ends = np.cumsum(legs) / legs.sum() * steps                       # note frame at which each leg ends
    t = np.arange(frames, dtype=np.float64)
    leg = np.minimum(np.searchsorted(ends, t, side="left"), len(legs) - 1)
    start = np.concatenate([[0.0], ends[:-1]])[leg]
    u = np.clip((t - start) / np.maximum(ends[leg] - start, 1e-9), 0.0, 1.0)
    eased = u - TURN_SMOOTHING * np.sin(2 * np.pi * u) / (2 * np.pi)    # slows down into each turn
    return points[leg] + (points[leg + 1] - points[leg]) * eased


def early_release(attack: int, sustain: int, frames: int, held: int) -> int:
    """Note frames before note-off that play what follows the sustain (the release, then the track's last
    frame held), for a source of `frames` frames whose attack and sustain last `attack` and `sustain`
    frames, and a note held `held` frames (counted from its onset): none for a note up to attack + sustain
    long, then one more per frame of holding as long as the note is no longer than the whole source (which
    it then replays frame for frame), then one fewer per frame, the sustain taking two (the rest of the
    release moves after note-off).

    >>> [early_release(10, 20, 40, held) for held in (30, 31, 33, 36, 40, 42, 45, 60)]
    [0, 0, 2, 5, 9, 7, 4, 0]
    """
    rising = max(0, held - (attack + sustain + 1))
    if held <= frames:
        return int(rising)
    return int(max(0, rising - 2 * (held - frames)))


def time_map(segments: list[Segments], weights: list[float], held_frames: int, total_frames: int,
             rng: np.random.Generator | None = None, speed: float = 0.6) -> list[np.ndarray]:
    """One time map per corner (fractional source frames, `total_frames` long) for a note held
    `held_frames` frames. The corners share the note's timeline: its attack lasts the weight-mean of their
    attacks, and each corner maps it onto its own attack, sustain and release (a segment-aligned blend).
    `rng` picks the turns of the held part (a round robin passes its own); `speed` is the mean rate of
    travel through the sustain, in source frames per note frame (of the weight-mean sustain); all corners
    take the same path through their own sustains. A note held about as long as its sources plays part or
    all of their release before note-off (`early_release`), so at the source's own length it replays it."""
    w = np.asarray(weights, np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / max(1, len(w)))
    mean = lambda values: float(np.dot(w, values))                                   # noqa: E731
    attack = int(round(mean([s.attack for s in segments])))
    t = np.arange(min(attack, held_frames, total_frames), dtype=np.float64)   # a short note cuts the attack
    held = max(0, min(held_frames, total_frames) - len(t))
    sustain = mean([s.sustain for s in segments])
    after = mean([s.after for s in segments])
    early = early_release(attack, int(round(sustain)), int(round(mean([s.frames for s in segments]))),
                          held_frames)
    early = min(early, max(0, held - 1))
    # one path through the sustain in shares of its length, which every corner follows through its own
    path = _wander(0.0, 1.0, held - early, rng, speed / sustain if sustain > 0 else 1.0)
    maps = []
    for seg in segments:
        pos = np.empty(total_frames)
        a = t
        pos[:len(a)] = seg.onset + (a * seg.attack / attack if attack > 0 else 0.0)
        n_path = held - early
        pos[len(a):len(a) + n_path] = seg.attack_end + path * seg.sustain
        last = float(seg.frames - 1)
        rate = seg.after / after if after > 0 else 1.0       # each corner through its own release
        start = seg.release_start if held > 0 or attack > 0 else seg.onset
        pos[len(a) + n_path:len(a) + held] = np.minimum(start + rate * np.arange(1, early + 1), last)
        done = len(a) + held
        if total_frames > done:
            here = start + rate * early
            pos[done:] = np.minimum(here + np.arange(1, total_frames - done + 1), last)
        maps.append(pos)
    return maps


def sample_track(track: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Read a (frames,) or (frames, dims) track at fractional frame positions (linear, held at both ends).

    >>> sample_track(np.array([0.0, 10.0, 20.0]), np.array([0.5, 1.25, 7.0])).tolist()
    [5.0, 12.5, 20.0]
    """
    track = np.asarray(track, np.float64)
    pos = np.clip(np.asarray(positions, np.float64), 0.0, len(track) - 1)
    i = np.minimum(np.floor(pos).astype(int), len(track) - 2) if len(track) > 1 else np.zeros(len(pos), int)
    if len(track) == 1:
        return np.repeat(track[:1], len(pos), axis=0)
    frac = pos - i
    if track.ndim > 1:
        frac = frac[:, None]
    return track[i] * (1 - frac) + track[i + 1] * frac


def smooth(track: np.ndarray, frames: int) -> np.ndarray:
    """Moving average over `frames` frames (edges held), for splitting a pitch curve into its slow glide and
    its fine deviations.

    >>> smooth(np.array([0.0, 0.0, 3.0, 0.0, 0.0]), 3).tolist()
    [0.0, 1.0, 1.0, 1.0, 0.0]
    """
    x = np.asarray(track, np.float64)
    if frames <= 1 or len(x) == 0:
        return x.copy()
    half = frames // 2
    padded = np.concatenate([np.full(half, x[0]), x, np.full(frames - 1 - half, x[-1])])
    return np.convolve(padded, np.ones(frames) / frames, mode="valid")
