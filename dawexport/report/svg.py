"""Line drawings for the build report as inline SVG: waveforms, loop seams, wavetable frames, loss curves.

    >>> svg = waveform_svg(np.sin(np.linspace(0, 20, 1000)), width=100, height=20)
    >>> svg.startswith("<svg") and "<polygon" in svg
    True
    >>> nice_ticks(0.013, 0.92, 4)
    [0.25, 0.5, 0.75]

Coordinates are rounded to one decimal and long signals are reduced to one min/max pair per column, so
a drawing stays a few kilobytes. Styling (colours, stroke widths) lives in the page's stylesheet.
"""
from __future__ import annotations

import math
from html import escape

import numpy as np


def _points(xs, ys) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def _svg(width: float, height: float, body: str, label: str, css: str) -> str:
    return (f'<svg class="{css}" viewBox="0 0 {width:g} {height:g}" preserveAspectRatio="none" role="img" '
            f'aria-label="{escape(label)}">{body}</svg>')


def envelope(x: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest value in each of `columns` equal slices of x (fewer if x is shorter)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    columns = max(1, min(columns, len(x)))
    edges = np.linspace(0, len(x), columns + 1).astype(int)
    return (np.minimum.reduceat(x, edges[:-1]), np.maximum.reduceat(x, edges[:-1]))


def waveform_svg(x: np.ndarray, *, width: int = 600, height: int = 80, label: str = "waveform",
                 css: str = "wave") -> str:
    """A filled min/max outline of a whole sound, ±1 full scale."""
    if len(x) == 0:
        return _svg(width, height, "", label, css)
    low, high = envelope(x, width)
    cols = np.linspace(0, width, len(low))
    mid = height / 2
    top = mid - np.clip(high, -1, 1) * mid
    bottom = mid - np.clip(low, -1, 1) * mid
    outline = _points(np.concatenate([cols, cols[::-1]]), np.concatenate([top, bottom[::-1]]))
    return _svg(width, height, f'<line class="axis" x1="0" y1="{mid:g}" x2="{width}" y2="{mid:g}"/>'
                f'<polygon points="{outline}"/>', label, css)


def loop_seam_svg(x: np.ndarray, start: int, end: int, sample_rate: int, *, half_window_s: float = 0.004,
                  width: int = 160, height: int = 64) -> str:
    """The loop's end and its start overlaid at the seam: left of the centre line is what plays just before
    the jump (the end of the loop), right of it what plays just after (the start). A clean loop joins into
    one smooth line; a click shows as a step at the centre.

    `end` is inclusive (as in SFZ and the smpl chunk): after frame `end` the player continues at `start`.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    half = max(2, int(round(half_window_s * sample_rate)))
    offsets = np.arange(-half, half)
    at_end = np.take(x, np.clip(end + 1 + offsets, 0, len(x) - 1))       # without looping: runs on past the end
    at_start = np.take(x, np.clip(start + offsets, 0, len(x) - 1))       # what the loop jumps to
    scale = max(1e-9, float(np.max(np.abs(np.concatenate([at_end, at_start])))))
    step = max(1, len(offsets) // width)
    xs = (offsets[::step] + half) * width / (2 * half)
    mid = height / 2

    def y(values):
        return mid - 0.9 * mid * values[::step] / scale

    left = xs <= width / 2
    right = xs >= width / 2
    end_y, start_y = y(at_end), y(at_start)
    body = (f'<line class="axis" x1="0" y1="{mid:g}" x2="{width}" y2="{mid:g}"/>'
            f'<line class="seam" x1="{width / 2:g}" y1="0" x2="{width / 2:g}" y2="{height}"/>'
            f'<polyline class="ghost-end" points="{_points(xs[right], end_y[right])}"/>'
            f'<polyline class="ghost-start" points="{_points(xs[left], start_y[left])}"/>'
            f'<polyline class="loop-end" points="{_points(xs[left], end_y[left])}"/>'
            f'<polyline class="loop-start" points="{_points(xs[right], start_y[right])}"/>')
    return _svg(width, height, body, "loop seam: end of the loop (left) joined to its start (right)", "seam")


def seam_step_db(x: np.ndarray, start: int, end: int) -> float:
    """How much the seam bends the waveform compared with the loop itself, in dB: the bend (second
    difference) where the last frame of the loop meets its first, over the largest bend inside the loop
    (95th percentile). At or below 0 dB the seam is as smooth as the sound; well above it, a click.

        >>> t = np.arange(1000); x = np.sin(2 * np.pi * t / 100)
        >>> seam_step_db(x, 100, 899) <= 0.0, seam_step_db(x, 100, 874) > 20
        (True, True)
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if not 0 < start < end < len(x) or end - start < 4:
        return float("nan")
    seam = abs(x[start] - 2 * x[end] + x[end - 1])
    inside = np.abs(np.diff(x[start:end + 1], 2))
    typical = max(float(np.percentile(inside, 95)), 1e-12)
    return float(20 * np.log10(max(seam, 1e-12) / typical))


def wavetable_svg(table: np.ndarray, *, max_frames: int = 24, width: int = 320, height: int = 200,
                  points: int = 128) -> str:
    """The frames of a wavetable stacked back to front, each shifted up and right: a 3-D view of the table."""
    table = np.asarray(table, dtype=np.float64)
    n = len(table)
    picks = np.unique(np.round(np.linspace(0, n - 1, min(n, max_frames))).astype(int))
    depth_x, depth_y = 0.25 * width, 0.45 * height
    face_w, amp = width - depth_x, 0.14 * height
    scale = max(1e-9, float(np.max(np.abs(table))))
    lines = []
    for order, index in enumerate(picks[::-1]):                   # back (last frame) first
        k = (len(picks) - 1 - order) / max(1, len(picks) - 1)     # 0 front .. 1 back
        frame = table[index, np.linspace(0, table.shape[1] - 1, points).astype(int)] / scale
        xs = depth_x * k + np.linspace(0, face_w, points)
        ys = height - amp - 4 - depth_y * k - amp * frame
        lines.append(f'<polyline style="--k:{k:.2f}" points="{_points(xs, ys)}"/>')
    return _svg(width, height, "".join(lines), f"{n} wavetable frames, first in front", "table")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round numbers between low and high, about `count` of them."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low] if math.isfinite(low) else []
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 12) for i in range(int((high - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"


def curve_svg(series: list[tuple[str, str, np.ndarray, np.ndarray]], *, x_label: str, y_label: str,
              width: int = 640, height: int = 220, log_y: bool = True) -> str:
    """A line chart with axes: `series` are (css class, legend name, x, y); y on a log scale by default."""
    left, right, top, bottom = 52, 10, 10, 34
    xs_all = np.concatenate([np.asarray(s[2], float) for s in series]) if series else np.zeros(1)
    ys_all = np.concatenate([np.asarray(s[3], float) for s in series]) if series else np.ones(1)
    ok = np.isfinite(ys_all) & ((ys_all > 0) if log_y else True)
    if not ok.any():
        return _svg(width, height, "", "no training data", "chart")
    x0, x1 = float(np.min(xs_all)), float(np.max(xs_all))
    x1 = x1 if x1 > x0 else x0 + 1
    transform = np.log10 if log_y else (lambda v: np.asarray(v, float))
    y_values = transform(ys_all[ok])
    y0, y1 = float(np.min(y_values)), float(np.max(y_values))
    pad = 0.05 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad

    def px(v):
        return left + (np.asarray(v, float) - x0) / (x1 - x0) * (width - left - right)

    def py(v):
        return top + (1 - (transform(np.asarray(v, float)) - y0) / (y1 - y0)) * (height - top - bottom)

    parts = [f'<rect class="frame" x="{left}" y="{top}" width="{width - left - right}" '
             f'height="{height - top - bottom}"/>']
    for tick in nice_ticks(x0, x1, 6):
        parts.append(f'<text class="tick" x="{px(tick):.1f}" y="{height - bottom + 14}" '
                     f'text-anchor="middle">{_fmt(tick)}</text>')
    if log_y:
        decades = range(math.floor(y0), math.ceil(y1) + 1)
        y_ticks = [10.0 ** d * m for d in decades for m in (1, 2, 5) if y0 <= math.log10(10.0 ** d * m) <= y1]
        if len(y_ticks) < 3:                 # less than a decade: every whole multiple
            y_ticks = [10.0 ** d * m for d in decades for m in range(1, 10) if y0 <= math.log10(10.0 ** d * m) <= y1]
        if len(y_ticks) > 8:
            y_ticks = [t for t in y_ticks if f"{t:.3g}"[0] == "1"] or y_ticks[::2]
    else:
        y_ticks = nice_ticks(y0, y1, 5)
    for tick in y_ticks:
        y = float(py(tick))
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{_fmt(tick)}</text>')
    for css, _, xs, ys in series:
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        keep = np.isfinite(ys) & ((ys > 0) if log_y else True)
        if keep.sum() == 1:
            parts.append(f'<circle class="{css}" cx="{px(xs[keep])[0]:.1f}" cy="{py(ys[keep])[0]:.1f}" r="2.5"/>')
        elif keep.any():
            parts.append(f'<polyline class="{css}" points="{_points(px(xs[keep]), py(ys[keep]))}"/>')
    parts.append(f'<text class="label" x="{(left + width - right) / 2:g}" y="{height - 4}" '
                 f'text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text class="label" x="12" y="{(top + height - bottom) / 2:g}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(top + height - bottom) / 2:g})">{escape(y_label)}</text>')
    legend_x = width - right - 8
    for i, (css, name, _, _) in enumerate(series):
        y = top + 14 + 14 * i
        parts.append(f'<line class="{css}" x1="{legend_x - 70}" y1="{y - 4}" x2="{legend_x - 54}" y2="{y - 4}"/>'
                     f'<text class="legend" x="{legend_x - 50}" y="{y}">{escape(name)}</text>')
    return (f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(y_label)} over '
            f'{escape(x_label)}">' + "".join(parts) + "</svg>")
