"""Vectorised raster primitives on a label canvas, with a pinhole street camera.

A :class:`Canvas` holds the per-pixel maps a street layout produces: the trainId
``label``, an ``inst`` (instance) index, a ``part`` code (glass, tyre, lane marking,
lamp...), a ``face`` code (front, side, top, ground) and a metric ``depth``. Shapes are
drawn painter-style (far to near, later overwrites earlier) and every primitive only
touches the pixels of its own bounding box: rectangles are slices, ellipses and convex
polygons are masks over a small coordinate grid (a polygon is the intersection of the
half-planes of its edges). The :class:`Camera` projects world points (X right, Y up,
Z forward, metres) to pixels, so nearer objects come out bigger and lower.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# part codes (appearance detail inside a class; labels never depend on them)
NONE, GLASS, TYRE, MARKING, LAMP, TAIL, HEAD, TRUNK, SKIN, LOWER, CURB, RAIL, \
    SIGNAL_R, SIGNAL_G, SIGN_FACE, LIT_WINDOW, FRAME = range(17)
# face codes (for shading)
FRONT, SIDE, TOP, GROUND = range(4)
FAR = 1.0e4  # depth of the sky, metres


@dataclass
class Camera:
    """Pinhole camera ``hc`` metres above a flat ground; ``horizon`` as a fraction of H.

    ``f`` is the focal length in units of image height; ``yaw`` is the road direction
    (tangent) so that the road axis is the line ``X = x0 + yaw * Z``.
    """
    H: int
    W: int
    horizon: float = 0.42
    f: float = 1.6
    hc: float = 1.6
    yaw: float = 0.0

    def x(self, X: float | np.ndarray, Z: float | np.ndarray) -> np.ndarray:
        """Pixel column of world point (road-aligned lateral X, depth Z)."""
        return self.W / 2 + self.f * self.H * (X / Z + self.yaw)

    def y(self, Y: float | np.ndarray, Z: float | np.ndarray) -> np.ndarray:
        """Pixel row of world height Y (0 = ground) at depth Z."""
        return self.H * (self.horizon + self.f * (self.hc - Y) / Z)

    def px(self, metres: float, Z: float) -> float:
        """Size in pixels of ``metres`` seen at depth ``Z``."""
        return self.f * self.H * metres / Z

    def ground_z(self, rows: np.ndarray) -> np.ndarray:
        """Depth of the ground seen at pixel rows (``FAR`` above the horizon)."""
        d = (rows + 0.5) / self.H - self.horizon
        return np.where(d > 1e-4, self.f * self.hc / np.maximum(d, 1e-4), FAR)


class Canvas:
    """Label/instance/part/face/depth maps plus an instance table, drawn painter-style."""

    def __init__(self, H: int, W: int, fill: int = 10):
        self.H, self.W = H, W
        self.label = np.full((H, W), fill, np.uint8)
        self.inst = np.zeros((H, W), np.int32)
        self.part = np.zeros((H, W), np.uint8)
        self.face = np.zeros((H, W), np.uint8)
        self.depth = np.full((H, W), FAR, np.float32)
        self.inst_cls: list[int] = [fill]   # instance 0 = background (sky)
        self.inst_tone: list[float] = [0.5]
        self.lights: list[tuple[float, float, float, int]] = []  # (row, col, radius_px, kind)

    def new(self, cls: int, tone: float) -> int:
        """Register an instance of class ``cls`` with colour ``tone`` in [0, 1)."""
        self.inst_cls.append(cls)
        self.inst_tone.append(tone)
        return len(self.inst_cls) - 1

    # -- low level ---------------------------------------------------------------------
    def _box(self, x0: float, x1: float, y0: float, y1: float):
        """Clip a float pixel box to integer slice bounds (pixel centres inside)."""
        c0, c1 = max(int(np.ceil(x0 - 0.5)), 0), min(int(np.floor(x1 - 0.5)) + 1, self.W)
        r0, r1 = max(int(np.ceil(y0 - 0.5)), 0), min(int(np.floor(y1 - 0.5)) + 1, self.H)
        return r0, r1, c0, c1

    def _write(self, sl, mask, cls, inst, part, face, depth) -> None:
        """Write the attributes into ``sl`` where ``mask`` (None = everywhere)."""
        if mask is None:
            self.label[sl], self.inst[sl], self.part[sl], self.face[sl] = cls, inst, part, face
            self.depth[sl] = depth
            return
        ri, ci = np.nonzero(mask)                  # local indices inside the slice
        if not np.isscalar(part):
            part = part[ri, ci]
        if not np.isscalar(depth):
            depth = depth[ri, ci]
        ri += sl[0].start
        ci += sl[1].start
        self.label[ri, ci] = cls
        self.inst[ri, ci] = inst
        self.part[ri, ci] = part
        self.face[ri, ci] = face
        self.depth[ri, ci] = depth

    # -- primitives --------------------------------------------------------------------
    def rect(self, x0, x1, y0, y1, inst: int, part: int = NONE, face: int = FRONT,
             depth: float = 10.0, min_w: float = 0.0, min_h: float = 0.0) -> None:
        """Axis-aligned rectangle in pixel coordinates, widened to ``min_w`` pixels."""
        if x1 - x0 < min_w:
            c = (x0 + x1) / 2
            x0, x1 = c - min_w / 2, c + min_w / 2
        if y1 - y0 < min_h:
            c = (y0 + y1) / 2
            y0, y1 = c - min_h / 2, c + min_h / 2
        r0, r1, c0, c1 = self._box(x0, x1, y0, y1)
        if r1 > r0 and c1 > c0:
            self._write((slice(r0, r1), slice(c0, c1)), None, self.inst_cls[inst], inst,
                        part, face, depth)

    def ellipse(self, cx, cy, rx, ry, inst: int, part: int = NONE, face: int = FRONT,
                depth: float = 10.0, min_r: float = 0.75, hole: float = 0.0) -> None:
        """Filled ellipse (``hole`` > 0 makes a ring: inner radius fraction)."""
        rx, ry = max(rx, min_r), max(ry, min_r)
        r0, r1, c0, c1 = self._box(cx - rx, cx + rx, cy - ry, cy + ry)
        if r1 <= r0 or c1 <= c0:
            return
        dy = ((np.arange(r0, r1) + 0.5 - cy) / ry)[:, None]  # (h, 1)
        dx = ((np.arange(c0, c1) + 0.5 - cx) / rx)[None, :]  # (1, w)
        d2 = dy * dy + dx * dx                                # (h, w)
        mask = d2 <= 1.0
        if hole > 0:
            mask &= d2 >= hole * hole
        self._write((slice(r0, r1), slice(c0, c1)), mask, self.inst_cls[inst], inst,
                    part, face, depth)

    def poly_mask(self, pts):
        """Slice and mask of a convex polygon ``pts`` (N, 2) of (col, row) pixels."""
        pts = [(float(x), float(y)) for x, y in pts]
        xs_, ys_ = [p[0] for p in pts], [p[1] for p in pts]
        r0, r1, c0, c1 = self._box(min(xs_), max(xs_), min(ys_), max(ys_))
        if r1 <= r0 or c1 <= c0:
            return None, None
        ys = np.arange(r0, r1, dtype=np.float32)[:, None] + 0.5  # (h, 1)
        xs = np.arange(c0, c1, dtype=np.float32)[None, :] + 0.5  # (1, w)
        # orientation so that "inside" is the same side of every edge
        nxt = pts[1:] + pts[:1]
        area = sum(xa * yb - xb * ya for (xa, ya), (xb, yb) in zip(pts, nxt))
        sign = 1.0 if area >= 0 else -1.0
        mask = None
        for (xa, ya), (xb, yb) in zip(pts, nxt):
            if xa == xb and ya == yb:
                continue
            m = (sign * (xb - xa)) * (ys - ya) - (sign * (yb - ya)) * (xs - xa) >= -1e-6
            mask = m if mask is None else mask & m
        if mask is None:
            return None, None
        return (slice(r0, r1), slice(c0, c1)), mask

    def poly(self, pts, inst: int, part: int = NONE, face: int = FRONT,
             depth: float = 10.0) -> None:
        """Filled convex polygon of (col, row) pixel vertices."""
        sl, mask = self.poly_mask(pts)
        if sl is not None:
            self._write(sl, mask, self.inst_cls[inst], inst, part, face, depth)

    def thick_line(self, xa, ya, xb, yb, width: float, inst: int, part: int = NONE,
                   depth: float = 10.0) -> None:
        """A segment drawn as a quad ``width`` pixels thick, with square caps (joints close)."""
        dx, dy = xb - xa, yb - ya
        n = max(float(np.hypot(dx, dy)), 1e-6)
        ex, ey = dx / n * width / 2, dy / n * width / 2      # cap: extend both ends
        xa, ya, xb, yb = xa - ex, ya - ey, xb + ex, yb + ey
        ox, oy = -ey, ex
        self.poly([(xa + ox, ya + oy), (xb + ox, yb + oy), (xb - ox, yb - oy),
                   (xa - ox, ya - oy)], inst, part, FRONT, depth)

    def light(self, row: float, col: float, radius: float, kind: int) -> None:
        """Record a light source (used by the night style) at a pixel position."""
        if -radius < row < self.H + radius and -radius < col < self.W + radius:
            self.lights.append((row, col, radius, kind))
