"""Street objects in perspective: boxes (buildings, vehicles), people, two-wheelers, furniture.

Every function takes the :class:`~dgsslib.data.synthetic.draw.Camera`, the
:class:`~dgsslib.data.synthetic.draw.Canvas` and *world* parameters (metres) that the
layout sampled beforehand; none of them draws random numbers, so a layout is a pure
function of its seed whatever the image size. The key idea is the box: a front face (a
rectangle at depth ``Z0``), the side face that looks at the camera (a quad converging
to the vanishing point) and a top face when it lies below eye level. Thin structures
(poles, frames, sign posts) get a minimum pixel width so they stay learnable at 112 px.

Token-grid scale (benchmark v2): a ViT with 14-px patches sees 112x224 as an 8x16 grid, and
an object much thinner than a token is invisible to a light head. So people, riders, poles,
signal heads and signs are drawn stockier than life (``BODY``, the pole widths, signal
head and sign sizes) and the layout (``scene.py``) puts many of them near the camera, while
far ones stay small.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .draw import (FRONT, GLASS, HEAD, LAMP, LOWER, NONE, SIDE, SIGN_FACE, SIGNAL_G, SIGNAL_R,
                   SKIN, TAIL, TOP, TRUNK, TYRE, Camera, Canvas)

ZNEAR = 0.6  # near clipping depth, metres
Pattern = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (Z, Y) maps -> part codes
THIN = 4.0  # minimum width in pixels of any thin structure (5 px when near)
BODY = 1.4  # people and riders are drawn this much stockier than life (token-grid scale)


def thin(Z: float) -> float:
    """Minimum pixel width of a thin structure at depth Z: 5 px within 15 m, else 4 px."""
    return 5.0 if Z < 15.0 else THIN


def plane(cv: Canvas, cam: Camera, X: float, Z0: float, Z1: float, Y0: float, Y1: float,
          inst: int, face: int = SIDE, pattern: Pattern | None = None) -> None:
    """Vertical plane ``X = const`` (road-aligned) from depth Z0 to Z1, heights Y0..Y1."""
    Z0 = max(Z0, ZNEAR)
    if Z1 <= Z0 or abs(X) < 1e-3:
        return
    xa, xb = cam.x(X, Z0), cam.x(X, Z1)
    sl, mask = cv.poly_mask(([(xa, cam.y(Y0, Z0)), (xa, cam.y(Y1, Z0)),
                                      (xb, cam.y(Y1, Z1)), (xb, cam.y(Y0, Z1))]))
    if sl is None:
        return
    cols = np.arange(sl[1].start, sl[1].stop) + 0.5                # (w,)
    xn = (cols - cam.W / 2) / (cam.f * cam.H) - cam.yaw            # X/Z per column
    xn = np.where(np.abs(xn) > 1e-6, xn, 1e-6)
    Z = np.clip(X / xn, Z0, Z1)[None, :]                            # (1, w) depth
    depth = np.broadcast_to(Z, mask.shape)
    part = NONE
    if pattern is not None:
        rows = (np.arange(sl[0].start, sl[0].stop) + 0.5)[:, None]  # (h, 1)
        Y = cam.hc - (rows / cam.H - cam.horizon) * Z / cam.f        # (h, w) height
        part = pattern(np.broadcast_to(Z, mask.shape), Y)
    cv._write(sl, mask, cv.inst_cls[inst], inst, part, face, depth)


def face_rect(cv: Canvas, cam: Camera, X0: float, X1: float, Z: float, Y0: float,
              Y1: float, inst: int, part: int = NONE, min_w: float = 0.0,
              min_h: float = 0.0) -> None:
    """A fronto-parallel rectangle at depth Z (world extents)."""
    if Z >= ZNEAR:
        cv.rect(cam.x(X0, Z), cam.x(X1, Z), cam.y(Y1, Z), cam.y(Y0, Z), inst, part, FRONT, Z,
                min_w, min_h)


def box(cv: Canvas, cam: Camera, X0: float, X1: float, Z0: float, L: float, Y0: float,
        Y1: float, inst: int, side_pattern: Pattern | None = None) -> None:
    """A box: top face (if below the eye), visible side face, then the front face."""
    Z1 = Z0 + L
    if Z1 <= ZNEAR:
        return
    if Y1 < cam.hc - 0.05:
        za = max(Z0, ZNEAR)
        cv.poly(([(cam.x(X0, za), cam.y(Y1, za)), (cam.x(X1, za), cam.y(Y1, za)),
                          (cam.x(X1, Z1), cam.y(Y1, Z1)), (cam.x(X0, Z1), cam.y(Y1, Z1))]),
                inst, NONE, TOP, (za + Z1) / 2)
    if X0 > 0:
        plane(cv, cam, X0, Z0, Z1, Y0, Y1, inst, SIDE, side_pattern)
    elif X1 < 0:
        plane(cv, cam, X1, Z0, Z1, Y0, Y1, inst, SIDE, side_pattern)
    face_rect(cv, cam, X0, X1, Z0, Y0, Y1, inst)


def _side_x(X0: float, X1: float) -> float | None:
    return X0 if X0 > 0 else (X1 if X1 < 0 else None)


def wheels(cv: Canvas, cam: Camera, X0: float, X1: float, Z0: float, L: float, r: float,
           inst: int) -> None:
    """Tyres under the front face corners and, when visible, on the side face."""
    tw = min(0.3, (X1 - X0) / 4)
    for xa in (X0 + 0.05, X1 - 0.05 - tw):
        face_rect(cv, cam, xa, xa + tw, Z0 + 0.3, 0.0, r, inst, TYRE)
    xs = _side_x(X0, X1)
    if xs is None:
        return
    for zc in (Z0 + 0.25 * L, Z0 + 0.8 * L):
        if zc - r > ZNEAR:
            xa, xb = cam.x(xs, zc - r), cam.x(xs, zc + r)
            cv.ellipse((xa + xb) / 2, cam.y(r, zc), max(abs(xb - xa) / 2, 1.0),
                       cam.px(r, zc), inst, TYRE, SIDE, zc)


def window_band(y0: float, y1: float, period: float, z0: float) -> Pattern:
    """Side pattern: glass between heights y0..y1, pillars every ``period`` metres."""
    def pattern(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        on = (Y > y0) & (Y < y1) & (((Z - z0) / period) % 1.0 > 0.12)
        return np.where(on, GLASS, NONE).astype(np.uint8)
    return pattern


def vehicle(cv: Canvas, cam: Camera, kind: str, Xc: float, Z0: float, dims: tuple,
            inst: int, oncoming: bool) -> None:
    """Car / truck / bus / tram seen from behind (or from the front when oncoming)."""
    w, L, h = dims
    X0, X1 = Xc - w / 2, Xc + w / 2
    lamp = HEAD if oncoming else TAIL
    size = cam.px(h, Z0) if Z0 > ZNEAR else 1e9     # level of detail by pixel height
    detail = size >= 12
    if size < 7:  # far away: a plain box (and its lights) is enough
        box(cv, cam, X0, X1, Z0, L, 0.0, h, inst)
        ly = (0.6, 0.8)
    elif kind == "car":
        if detail:
            wheels(cv, cam, X0, X1, Z0, L, 0.33, inst)
        box(cv, cam, X0, X1, Z0, L, 0.25, 0.95, inst)
        c0, cl = Z0 + (0.6 if oncoming else 0.9), L - 1.9
        box(cv, cam, X0 + 0.12, X1 - 0.12, c0, cl, 0.95, h, inst,
            window_band(1.0, h - 0.06, cl / 2, c0))
        face_rect(cv, cam, X0 + 0.2, X1 - 0.2, c0, 1.02, h - 0.07, inst, GLASS)
        ly = (0.6, 0.8)
    elif kind == "truck":
        cab_l, cargo_l = 2.2, L - 2.4
        parts = [(Z0, cargo_l, 3.4 if h < 3.4 else h), (Z0 + cargo_l + 0.2, cab_l, 2.9)]
        if oncoming:
            parts = [(Z0 + cab_l + 0.2, cargo_l, parts[0][2]), (Z0, cab_l, 2.9)]
        if detail:
            wheels(cv, cam, X0, X1, Z0, L, 0.5, inst)
        for z, ln, top in sorted(parts, key=lambda p: -p[0]):
            box(cv, cam, X0, X1, z, ln, 0.5, top, inst, window_band(1.7, 2.5, ln, z + 0.2)
                if top < 3.0 else None)
        if oncoming:
            face_rect(cv, cam, X0 + 0.15, X1 - 0.15, Z0, 1.7, 2.6, inst, GLASS)
        ly = (0.7, 0.95)
    else:  # bus or tram
        if detail:
            wheels(cv, cam, X0, X1, Z0, L, 0.5, inst)
        box(cv, cam, X0, X1, Z0, L, 0.3, h, inst, window_band(1.2, h - 0.7, 1.6, Z0))
        if kind == "train":  # pantograph
            zc, top = Z0 + L / 2, h + 1.1
            if zc > ZNEAR:
                cv.thick_line(cam.x(Xc - 0.6, zc), cam.y(h, zc), cam.x(Xc, zc), cam.y(top, zc),
                              max(thin(zc), cam.px(0.06, zc)), inst, NONE, zc)
                cv.thick_line(cam.x(Xc - 0.8, zc), cam.y(top, zc), cam.x(Xc + 0.8, zc),
                              cam.y(top, zc), max(thin(zc), cam.px(0.06, zc)), inst, NONE, zc)
        gy = (1.1, h - 0.5) if oncoming else (1.6, h - 0.6)
        face_rect(cv, cam, X0 + 0.15, X1 - 0.15, Z0, gy[0], gy[1], inst, GLASS)
        ly = (0.5, 0.8)
    for xa in (X0 + 0.08, X1 - 0.38):
        if size >= 7:
            face_rect(cv, cam, xa, xa + 0.3, Z0, ly[0], ly[1], inst, lamp)
        if Z0 > ZNEAR:
            cv.light(cam.y(sum(ly) / 2, Z0), cam.x(xa + 0.15, Z0), cam.px(0.9, Z0), lamp)


def person(cv: Canvas, cam: Camera, X: float, Z: float, h: float, stride: float,
           inst: int) -> None:
    """A standing / walking pedestrian with feet at (X, Z); ``stride`` in metres."""
    if Z < ZNEAR + 0.3:
        return
    leg = max(cam.px(0.15 * BODY, Z), 1.5)
    x = cam.x(X, Z)
    yg, yh, ys = cam.y(0, Z), cam.y(0.48 * h, Z), cam.y(0.82 * h, Z)
    if leg >= 2.0:
        hip = cam.px(0.1 * BODY, Z)
        ds = cam.px(stride / 2, Z)
        cv.thick_line(x - hip, yh, x - hip - ds, yg, leg, inst, LOWER, Z)
        cv.thick_line(x + hip, yh, x + hip + ds, yg, leg, inst, LOWER, Z)
    else:
        cv.rect(x - 1, x + 1, yh, yg, inst, LOWER, FRONT, Z, min_w=thin(Z))
    half = cam.px(0.21 * BODY, Z)
    arm = cam.px(0.09 * BODY, Z)
    if arm >= 1.5:
        cv.rect(x - half - arm, x + half + arm, ys + 1, cam.y(0.5 * h, Z), inst, NONE, FRONT, Z)
    cv.poly(([(x - half, ys), (x + half, ys), (x + 0.8 * half, yh + 1),
                      (x - 0.8 * half, yh + 1)]), inst, NONE, FRONT, Z)
    cv.ellipse(x, cam.y(0.915 * h, Z), cam.px(0.1 * BODY, Z), cam.px(0.12 * BODY, Z), inst,
               SKIN, FRONT, Z, min_r=1.5)


def two_wheeler(cv: Canvas, cam: Camera, motor: bool, X: float, Z: float, d: int,
                bike: int, rider: int | None) -> None:
    """Bicycle or motorcycle in side view (facing ``d`` = +-1), optionally ridden."""
    if Z < ZNEAR + 0.5:
        return
    r, wb = (0.32, 1.45) if motor else (0.34, 1.05)
    P = lambda dx, y: (cam.x(X + d * dx, Z), cam.y(y, Z))  # noqa: E731  world -> pixel
    lw = max(thin(Z), cam.px(0.09 if not motor else 0.12, Z))
    rp = cam.px(r, Z)
    hole = 0.0 if motor else max(0.0, 1.0 - max(thin(Z), cam.px(0.1, Z)) / max(rp, 1e-6))
    for dx in (-wb / 2, wb / 2):
        cx, cy = P(dx, r)
        cv.ellipse(cx, cy, rp, rp, bike, TYRE, FRONT, Z, min_r=1.5, hole=hole)
    rear, front = P(-wb / 2, r), P(wb / 2, r)
    seat, handle, crank = P(-0.15, 0.9 if motor else 0.95), P(0.42, 1.05), P(0.0, 0.3)
    if motor:
        cv.poly(([P(-0.65, 0.55), P(-0.3, 0.88), P(0.35, 0.9), P(0.55, 0.6),
                          P(0.25, 0.3), P(-0.35, 0.32)]), bike, NONE, FRONT, Z)
        cv.thick_line(*handle, *front, lw, bike, NONE, Z)
        cv.ellipse(*P(0.6, 0.8), cam.px(0.09, Z), cam.px(0.09, Z), bike, HEAD, FRONT, Z)
    else:
        for a, b in ((rear, seat), (seat, crank), (crank, rear), (crank, handle),
                     (seat, handle), (handle, front)):
            cv.thick_line(*a, *b, lw, bike, NONE, Z)
    if rider is None:
        return
    hip = P(-0.2, 0.95 if motor else 1.0)
    shoulder = P(0.05, 1.5 if motor else 1.55)
    head = P(0.12, 1.7 if motor else 1.75)
    cv.thick_line(*hip, *crank, max(thin(Z), cam.px(0.15 * BODY, Z)), rider, LOWER, Z)
    cv.thick_line(*hip, *shoulder, max(thin(Z) + 1, cam.px(0.34 * BODY, Z)), rider, NONE, Z)
    cv.thick_line(*shoulder, *handle, max(thin(Z), cam.px(0.08 * BODY, Z)), rider, NONE, Z)
    rh = cam.px((0.13 if motor else 0.11) * BODY, Z)
    cv.ellipse(*head, rh, rh * 1.1, rider, NONE if motor else SKIN, FRONT, Z, min_r=1.5)


def tree(cv: Canvas, cam: Camera, X: float, Z: float, trunk_h: float, crown: float,
         lobes: tuple, inst: int) -> None:
    """Tree: trunk plus 1-3 elliptic crown lobes ((dx, dy, scale) in crown units)."""
    if Z < ZNEAR + crown:
        return
    face_rect(cv, cam, X - 0.15, X + 0.15, Z, 0.0, trunk_h + crown * 0.5, inst, TRUNK,
              min_w=thin(Z))
    for dx, dy, s in lobes:
        cv.ellipse(cam.x(X + dx * crown, Z), cam.y(trunk_h + crown * (1 + dy), Z),
                   cam.px(crown * s, Z), cam.px(crown * s * 0.9, Z), inst, NONE, FRONT, Z)


def street_lamp(cv: Canvas, cam: Camera, X: float, Z: float, h: float, arm: float,
                inst: int) -> None:
    """Lamp post with an arm reaching ``arm`` metres (signed) over the road."""
    if Z < ZNEAR + 1:
        return
    w = max(thin(Z), cam.px(0.3, Z))
    face_rect(cv, cam, X - 0.25, X + 0.25, Z, 0.0, h, inst, min_w=thin(Z))
    xa, ya, xb = cam.x(X, Z), cam.y(h, Z), cam.x(X + arm, Z)
    cv.thick_line(xa, ya, xb, ya - cam.px(0.3, Z), max(thin(Z), cam.px(0.2, Z)), inst, NONE, Z)
    cv.rect(xb - w * 1.5, xb + w * 1.5, ya - cam.px(0.3, Z), ya - cam.px(0.1, Z) + 1, inst,
            LAMP, FRONT, Z, min_h=thin(Z))
    cv.light(ya, xb, cam.px(1.5, Z), LAMP)


def traffic_light(cv: Canvas, cam: Camera, X: float, Z: float, Y: float, red: bool,
                  inst: int) -> None:
    """Signal head with back plate (0.75 x 1.4 m) whose bottom is ``Y`` metres high at (X, Z)."""
    if Z < ZNEAR + 1:
        return
    face_rect(cv, cam, X - 0.375, X + 0.375, Z, Y, Y + 1.4, inst, min_w=4.0, min_h=6.0)
    lamp_y = Y + (1.15 if red else 0.25)
    r = max(cam.px(0.16, Z), 0.8)
    cv.ellipse(cam.x(X, Z), cam.y(lamp_y, Z), r, r, inst, SIGNAL_R if red else SIGNAL_G,
               FRONT, Z, min_r=0.6)
    cv.light(cam.y(lamp_y, Z), cam.x(X, Z), cam.px(0.8, Z), SIGNAL_R if red else SIGNAL_G)


def pole(cv: Canvas, cam: Camera, X: float, Z: float, h: float, inst: int,
         width: float = 0.4) -> None:
    """A bare vertical pole from the ground up to ``h``."""
    face_rect(cv, cam, X - width / 2, X + width / 2, Z, 0.0, h, inst, min_w=thin(Z))


def traffic_sign(cv: Canvas, cam: Camera, X: float, Z: float, Y: float, shape: int,
                 size: float, inst: int) -> None:
    """Sign plate centred ``Y`` metres high: 0 circle, 1 triangle, 2 rectangle, 3 diamond."""
    if Z < ZNEAR + 1:
        return
    cx, cy, s = cam.x(X, Z), cam.y(Y, Z), max(cam.px(size / 2, Z), 2.0)
    if shape == 0:
        cv.ellipse(cx, cy, s, s, inst, NONE, FRONT, Z)
        cv.ellipse(cx, cy, 0.7 * s, 0.7 * s, inst, SIGN_FACE, FRONT, Z, min_r=0.5)
    elif shape == 1:
        cv.poly(([(cx - s, cy + 0.8 * s), (cx + s, cy + 0.8 * s), (cx, cy - s)]),
                inst, NONE, FRONT, Z)
        cv.poly(([(cx - .6 * s, cy + .55 * s), (cx + .6 * s, cy + .55 * s),
                          (cx, cy - .5 * s)]), inst, SIGN_FACE, FRONT, Z)
    elif shape == 2:
        cv.rect(cx - 1.4 * s, cx + 1.4 * s, cy - s, cy + s, inst, NONE, FRONT, Z)
        cv.rect(cx - 1.1 * s, cx + 1.1 * s, cy - .7 * s, cy + .7 * s, inst, SIGN_FACE, FRONT, Z)
    else:
        cv.poly(([(cx - s, cy), (cx, cy - s), (cx + s, cy), (cx, cy + s)]),
                inst, NONE, FRONT, Z)
        cv.poly(([(cx - .6 * s, cy), (cx, cy - .6 * s), (cx + .6 * s, cy),
                          (cx, cy + .6 * s)]), inst, SIGN_FACE, FRONT, Z)
