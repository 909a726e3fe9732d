"""GIF animations of token trajectories on the circle (d = 2) or the sphere S^2 (d = 3).

Frames are drawn directly with Pillow (orthographic projection, 2x supersampling, box
downsampling) rather than through matplotlib: a matplotlib 3-D frame costs ~50 ms, a Pillow
frame a few ms, so 120 frames of 64 tokens take about a second.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tokenswarm.io.results import temporary_sibling
from tokenswarm.plots._common import TOKEN_CMAP, as_float_array, time_decimals

__all__ = ["animate_tokens", "frame_indices"]

_SUPERSAMPLE = 2
_BACKGROUND = (255, 255, 255)
_OUTLINE = (120, 120, 120)
_GUIDE = (225, 225, 225)
_TEXT = (30, 30, 30)
_PROGRESS = (170, 170, 170)
_DISC = (226, 232, 242, 120)  # translucent sphere face: fades what lies behind it
_MIN_TITLE_SIZE = 9  # pixels: smaller text is hard to read in a GIF
_TRAIL_POINTS = 16  # polyline vertices per trail, whatever the number of raw steps


def frame_indices(length: int, max_frames: int) -> np.ndarray:
    """``min(length, max_frames)`` evenly spaced, distinct indices from 0 to ``length - 1``.

    With ``count <= length`` the spacing ``(length - 1) / (count - 1)`` is at least 1, so the
    rounded indices are strictly increasing: the first and last states are always shown.
    """
    count = min(length, max_frames)
    if count == 1:
        return np.array([length - 1])
    return np.round(np.linspace(0, length - 1, count)).astype(int)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except Exception:  # no FreeType / font file: Pillow's bundled font still renders text
        return ImageFont.load_default(size)


def _token_colors(n: int) -> np.ndarray:
    from matplotlib import colormaps

    # Stop before viridis' pale yellow end, which is hard to see on white.
    rgba = colormaps[TOKEN_CMAP](np.linspace(0.0, 0.85, n))
    return np.round(rgba[:, :3] * 255).astype(int)


def _fade(color, amount: float) -> tuple[int, int, int]:
    """``color`` blended towards white by ``amount`` in [0, 1]."""
    return tuple(int(round(c + (255 - c) * amount)) for c in color)


class _Canvas:
    """Pixel geometry of one frame: a square plot area under a title band."""

    def __init__(self, size: int, title_band: int):
        self.size = size
        self.title_band = title_band
        s = _SUPERSAMPLE
        self.width = size * s
        self.height = (size + title_band) * s
        self.cx = self.width / 2
        self.cy = (title_band + size / 2) * s
        self.radius = 0.44 * size * s

    def to_pixels(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Plot coordinates in [-1, 1] (v up) to supersampled pixel coordinates."""
        return self.cx + self.radius * u, self.cy - self.radius * v


def _circle_background(canvas: _Canvas) -> Image.Image:
    img = Image.new("RGB", (canvas.width, canvas.height), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    s, r, cx, cy = _SUPERSAMPLE, canvas.radius, canvas.cx, canvas.cy
    reach = r * 1.08
    draw.line([(cx - reach, cy), (cx + reach, cy)], fill=_GUIDE, width=s)
    draw.line([(cx, cy - reach), (cx, cy + reach)], fill=_GUIDE, width=s)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=_OUTLINE, width=2 * s)
    return img


def _dots(draw: ImageDraw.ImageDraw, px, py, colors, radius: float, order=None,
          outline=(60, 60, 60)) -> None:
    for i in (range(len(px)) if order is None else order):
        x, y = px[i], py[i]
        draw.ellipse([x - radius, y - radius, x + radius, y + radius],
                     fill=tuple(colors[i]), outline=outline, width=max(1, _SUPERSAMPLE // 2))


def _trails(draw: ImageDraw.ImageDraw, path_u: np.ndarray, path_v: np.ndarray, colors,
            width: int, visible: np.ndarray | None = None, fade: float = 0.0) -> None:
    """Polylines fading in from the oldest vertex. ``path_*``: ``(P, n)``; ``visible``:
    ``(P, n)`` booleans, a segment is drawn when both of its ends are visible."""
    segments = path_u.shape[0] - 1
    for j in range(segments):
        alpha = int(25 + 130 * (j + 1) / segments)
        for i in range(path_u.shape[1]):
            if visible is not None and not (visible[j, i] and visible[j + 1, i]):
                continue
            colour = _fade(colors[i], fade) if fade else tuple(colors[i])
            draw.line([(path_u[j, i], path_v[j, i]), (path_u[j + 1, i], path_v[j + 1, i])],
                      fill=(*colour, alpha), width=width)


def _trail_window(traj: np.ndarray, frames: np.ndarray, k: int, trail: int) -> np.ndarray:
    """Raw positions from ``trail`` frames ago up to frame ``k``: ``(P, n, d)``, P <= 16."""
    start = frames[max(0, k - trail)]
    stop = frames[k]
    if stop <= start:
        return traj[stop:stop + 1]
    picks = np.unique(np.round(np.linspace(start, stop, min(stop - start + 1,
                                                              _TRAIL_POINTS))).astype(int))
    return traj[picks]


def _render_circle(traj, frames, k, canvas, background, colors, trail, dot_radius):
    img = background.copy()
    draw = ImageDraw.Draw(img, "RGBA")
    if trail > 0 and k > 0:
        window = _trail_window(traj, frames, k, trail)
        if window.shape[0] > 1:
            pu, pv = canvas.to_pixels(window[..., 0], window[..., 1])
            _trails(draw, pu, pv, colors, width=max(1, round(1.5 * _SUPERSAMPLE)))
    px, py = canvas.to_pixels(traj[frames[k], :, 0], traj[frames[k], :, 1])
    _dots(draw, px, py, colors, dot_radius)
    return img


def _camera(elev_deg: float, azim_deg: float) -> np.ndarray:
    """Rows: screen-right, screen-up and towards-viewer unit vectors (matplotlib's angles)."""
    e, a = math.radians(elev_deg), math.radians(azim_deg)
    right = np.array([-math.sin(a), math.cos(a), 0.0])
    up = np.array([-math.sin(e) * math.cos(a), -math.sin(e) * math.sin(a), math.cos(e)])
    toward = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    return np.stack([right, up, toward])


@lru_cache(maxsize=1)
def _wireframe() -> list[np.ndarray]:
    """Parallels every 30 degrees and 12 meridians, each a ``(m, 3)`` polyline."""
    s = np.linspace(0.0, 2.0 * np.pi, 121)
    curves = []
    for lat in np.radians([-60, -30, 0, 30, 60]):
        curves.append(np.stack([np.cos(lat) * np.cos(s), np.cos(lat) * np.sin(s),
                                np.full_like(s, np.sin(lat))], axis=1))
    h = np.linspace(0.0, np.pi, 61)
    for lon in np.radians(np.arange(0, 180, 30)):
        # A great circle through the poles covers the meridians at lon and lon + 180.
        full = np.concatenate([h, h + np.pi])
        curves.append(np.stack([np.sin(full) * np.cos(lon), np.sin(full) * np.sin(lon),
                                np.cos(full)], axis=1))
    return curves


def _draw_wireframe(draw, canvas, camera, front: bool, colour, width) -> None:
    for curve in _wireframe():
        screen = curve @ camera.T
        keep = (screen[:, 2] >= 0) if front else (screen[:, 2] < 0)
        px, py = canvas.to_pixels(screen[:, 0], screen[:, 1])
        # Draw maximal runs of consecutive kept vertices as polylines.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(int), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start >= 2:
                vertices = list(zip(px[start:stop], py[start:stop], strict=True))
                draw.line(vertices, fill=colour, width=width)


def _render_sphere(traj, frames, k, canvas, colors, trail, dot_radius, camera):
    img = Image.new("RGB", (canvas.width, canvas.height), _BACKGROUND)
    draw = ImageDraw.Draw(img, "RGBA")
    s, r, cx, cy = _SUPERSAMPLE, canvas.radius, canvas.cx, canvas.cy
    x = traj[frames[k]] @ camera.T  # (n, 3): screen right, up, depth
    behind = x[:, 2] < 0
    window = _trail_window(traj, frames, k, trail) if trail > 0 and k > 0 else None
    if window is not None and window.shape[0] > 1:
        w = window @ camera.T
        wu, wv = canvas.to_pixels(w[..., 0], w[..., 1])
    # Back half first, then a translucent disc over it, then the front half.
    _draw_wireframe(draw, canvas, camera, False, (215, 215, 215), s)
    if window is not None and window.shape[0] > 1:
        _trails(draw, wu, wv, colors, width=s, visible=w[..., 2] < 0, fade=0.5)
    px, py = canvas.to_pixels(x[:, 0], x[:, 1])
    order_back = [i for i in np.argsort(x[:, 2]) if behind[i]]
    faded = [_fade(c, 0.5) for c in colors]
    _dots(draw, px, py, faded, dot_radius * 0.8, order=order_back, outline=(150, 150, 150))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_DISC)
    _draw_wireframe(draw, canvas, camera, True, (175, 175, 175), s)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=_OUTLINE, width=2 * s)
    if window is not None and window.shape[0] > 1:
        _trails(draw, wu, wv, colors, width=max(1, round(1.5 * s)), visible=w[..., 2] >= 0)
    order_front = [i for i in np.argsort(x[:, 2]) if not behind[i]]
    _dots(draw, px, py, colors, dot_radius, order=order_front)
    return img


def _finish(img: Image.Image, canvas: _Canvas, title: str | None, label: str,
            progress: float) -> Image.Image:
    """Downsample, then add the title and a progress bar at full resolution.

    The title line is ``title    label``; when it is wider than the frame the font shrinks
    down to a legible minimum, and then the title (never the time label) is shortened with
    an ellipsis, so nothing is clipped at the frame's edges.
    """
    img = img.reduce(_SUPERSAMPLE)
    draw = ImageDraw.Draw(img)
    room = 0.96 * img.width
    size = max(10, round(canvas.title_band * 0.5))

    def line(name: str | None) -> str:
        return f"{name}    {label}" if name else label

    while size > _MIN_TITLE_SIZE and draw.textlength(line(title), font=_font(size)) > room:
        size -= 1
    font = _font(size)
    text = line(title)
    if title and draw.textlength(text, font=font) > room:
        kept = len(title)
        while kept > 0 and draw.textlength(line(title[:kept].rstrip() + "…"), font=font) > room:
            kept -= 1
        text = line(title[:kept].rstrip() + "…" if kept else None)
    draw.text((canvas.size / 2, canvas.title_band * 0.55), text, fill=_TEXT, font=font,
              anchor="mm")
    bar_y = img.height - 4
    draw.line([(0, bar_y), (img.width * progress, bar_y)], fill=_PROGRESS, width=3)
    return img


def _shared_palette(frames: list[Image.Image], exact: list[tuple[int, int, int]]) -> Image.Image:
    """One 256-colour palette for the whole GIF (no per-frame colour flicker).

    ``exact`` colours (background, outlines, text, token colours) are kept verbatim: a median
    cut alone would average pure white with the anti-aliased near-whites into a grey tint.
    """
    exact = list(dict.fromkeys(exact))[:128]
    picks = [frames[0], frames[len(frames) // 2], frames[-1]]
    strip = Image.new("RGB", (sum(f.width for f in picks), picks[0].height))
    offset = 0
    for f in picks:
        strip.paste(f, (offset, 0))
        offset += f.width
    free = 256 - len(exact)
    learned = np.array(strip.quantize(colors=free, method=Image.Quantize.MEDIANCUT)
                       .getpalette()[: 3 * free]).reshape(-1, 3)
    # Pillow maps colours through a coarse lookup cache, so a learned entry a few levels from
    # an exact colour (e.g. 252 grey next to 255 white) can win the cell: drop such entries.
    gap = np.abs(learned[:, None, :] - np.array(exact)[None, :, :]).max(axis=2).min(axis=1)
    learned = learned[gap >= 10]
    entries = [c for colour in exact for c in colour] + learned.reshape(-1).tolist()
    entries += [0] * (768 - len(entries))
    palette = Image.new("P", (1, 1))
    palette.putpalette(entries)
    return palette


def animate_tokens(traj: Any, times: Any, path: str | Path, *, fps: float = 15,
                   max_frames: int = 120, title: str | None = None, trail: int = 6,
                   size: int = 420, elev: float = 20.0, azim: float = -60.0,
                   rotation: float = 0.0) -> Path:
    """Write a GIF of tokens moving on the circle (d = 2) or the sphere S^2 (d = 3).

    Args:
        traj: trajectory ``(T, n, d)`` with d = 2 or 3 (numpy or torch); tokens are drawn
            where they are, not renormalised.
        times: ``(T,)`` times, shown as ``t = ...`` in the title of each frame.
        path: output file (parent folders are created); written as GIF whatever the suffix.
        fps: frames per second.
        max_frames: at most this many frames, evenly subsampled (first and last included):
            the GIF has ``min(T, max_frames)`` frames.
        title: text before ``t = ...`` in the title.
        trail: faint trails over the last ``trail`` frame intervals (0: none).
        size: plot area in pixels (square); the title band adds 12%.
        elev, azim: camera angles in degrees for d = 3 (matplotlib convention).
        rotation: total azimuth rotation in degrees over the animation for d = 3 (0: fixed
            view; e.g. 90 for a slow turn that helps depth perception).

    Returns:
        The path of the written GIF.

    Raises:
        ValueError: if d is not 2 or 3 (project higher-dimensional tokens first), or on
            inconsistent shapes or parameters.
    """
    x = as_float_array(traj, "traj")
    if x.ndim != 3:
        raise ValueError(f"traj must have shape (T, n, d), got {x.shape}")
    d = x.shape[-1]
    if d not in (2, 3):
        raise ValueError(f"animate_tokens draws d = 2 (circle) or d = 3 (sphere), got d = {d} "
                         f"(traj shape {x.shape}); project the tokens to 2 or 3 dimensions "
                         "first, e.g. onto their top principal directions")
    t = as_float_array(times, "times").reshape(-1)
    if t.size != x.shape[0]:
        raise ValueError(f"times has {t.size} entries but traj has T = {x.shape[0]} states")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"traj must hold at least one state of one token, got {x.shape}")
    if int(max_frames) < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if trail < 0:
        raise ValueError(f"trail must be >= 0, got {trail}")
    if size < 64:
        raise ValueError(f"size must be >= 64 pixels, got {size}")
    if not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x).all(axis=(1, 2))))
        raise ValueError(f"traj has non-finite values, first at state {bad} (t = {t[bad]})")

    frames = frame_indices(x.shape[0], int(max_frames))
    decimals = time_decimals(t[frames])
    canvas = _Canvas(int(size), title_band=max(24, round(0.12 * size)))
    colors = _token_colors(x.shape[1])
    dot_radius = max(2.0, 0.011 * size) * _SUPERSAMPLE
    background = _circle_background(canvas) if d == 2 else None
    fixed_camera = _camera(elev, azim)

    images = []
    for k in range(frames.size):
        if d == 2:
            img = _render_circle(x, frames, k, canvas, background, colors, trail, dot_radius)
        else:
            camera = (_camera(elev, azim + rotation * k / max(1, frames.size - 1))
                      if rotation else fixed_camera)
            img = _render_sphere(x, frames, k, canvas, colors, trail, dot_radius, camera)
        label = f"t = {t[frames[k]]:.{decimals}f}"
        progress = (k + 1) / frames.size
        images.append(_finish(img, canvas, title, label, progress))

    exact = [_BACKGROUND, _OUTLINE, _GUIDE, _TEXT, _PROGRESS, (60, 60, 60)]
    exact += [tuple(int(v) for v in c) for c in colors]
    palette = _shared_palette(images, exact)
    indexed = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Identical consecutive frames would be merged by the encoder; the progress bar and the
    # time label make every frame distinct, so the frame count is min(T, max_frames).
    # Written to a temporary sibling and renamed: a reader never sees a truncated GIF.
    with temporary_sibling(out) as temporary:
        indexed[0].save(temporary, format="GIF", save_all=True, append_images=indexed[1:],
                        duration=max(20, round(1000 / fps)), loop=0, optimize=False)
        os.replace(temporary, out)
    return out
