"""Procedural street layouts: (seed, index) -> a perspective label map with 19 Cityscapes classes.

The key idea: a layout is sampled in *world* coordinates (metres) from a generator seeded
only by ``(seed, index)`` and then rasterised through a pinhole camera at the requested
size. So the label map never depends on the domain style (every domain renders the same
layout) and barely on the resolution. The ground (``ground.py``) is computed per pixel by
back-projection; everything standing is queued as a draw call with a layer and a depth and
drawn painter-style, far to near: a far skyline, facades along both building lines, fences
and hedges, then trees, poles, lights, signs, people, riders and vehicles in the street.

Placement (benchmark v2): thin classes (people, riders, poles, signals, signs) are drawn
from a near/far mixture of depths (``_Builder.depth``), so many span a 14-px token at the
mini size while distant small instances stay; pedestrians sometimes walk in pairs and
cross the road near the camera.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..labels import IGNORE_INDEX
from . import objects as ob
from .draw import FRAME, GLASS, LIT_WINDOW, NONE, Camera, Canvas
from .ground import Street, draw_ground, sample_street

ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY, PERSON, RIDER, \
    CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = range(19)
THIN_CLASSES = (POLE, LIGHT, SIGN, RIDER, BICYCLE)


@dataclass
class Scene:
    """A rasterised layout: per-pixel maps plus the instance table and light sources."""
    label: np.ndarray      # (H, W) uint8 trainIds, 255 = ignore (ego hood)
    inst: np.ndarray       # (H, W) int32 index into inst_cls / inst_tone
    part: np.ndarray       # (H, W) uint8 part codes (see draw.py)
    face: np.ndarray       # (H, W) uint8 face codes (front, side, top, ground)
    depth: np.ndarray      # (H, W) float32 metres (sky = FAR)
    inst_cls: np.ndarray   # (N,) int class of each instance
    inst_tone: np.ndarray  # (N,) float in [0, 1): colour choice of each instance
    lights: np.ndarray     # (L, 4) float: row, col, radius px, kind (part code)
    horizon: float         # horizon row as a fraction of H
    camera: Camera         # the camera the layout was rasterised with


def layout_rng(seed: int, index: int) -> np.random.Generator:
    """The generator every layout decision is drawn from (depends on seed and index only)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index), 7]))


def _hash01(x: np.ndarray) -> np.ndarray:
    """Cheap deterministic hash of a float array into [0, 1)."""
    return (np.sin(x * 12.9898 + 78.233) * 43758.5453) % 1.0


def _facade(z0: float, h: float, fh: float, wp: float, ww: float, wh: float, lit: float,
            salt: float) -> ob.Pattern:
    """Window grid on a facade: period ``wp`` along Z, floors of ``fh`` metres."""
    def pattern(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        u, v = ((Z - z0) / wp) % 1.0, (Y / fh) % 1.0
        win = (np.abs(u - 0.5) < ww / 2) & (v > 0.3) & (v < 0.3 + wh) & (Y > fh) & (Y < h - 0.6)
        shop = (Y > 0.3) & (Y < fh * 0.8) & (np.abs(u - 0.5) < 0.42) & (salt % 1.0 < 0.5)
        on = _hash01(np.floor(Y / fh) * 31.0 + np.floor((Z - z0) / wp) * 7.0 + salt) < lit
        return np.where(win, np.where(on, LIT_WINDOW, GLASS), np.where(shop, GLASS, NONE)
                        ).astype(np.uint8)
    return pattern


def _fence(z0: float) -> ob.Pattern:
    def pattern(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
        return np.where(((Z - z0) / 2.5) % 1.0 < 0.08, FRAME, NONE).astype(np.uint8)
    return pattern


class _Builder:
    """Random draws plus a queue of draw calls ``(depth, layer, call)`` for one layout."""

    def __init__(self, rng: np.random.Generator, cv: Canvas, cam: Camera):
        self.rng, self.cv, self.cam = rng, cv, cam
        self.ops: list[tuple[float, int, Callable[[], None]]] = []

    def U(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def new(self, cls: int) -> int:
        """A new instance of ``cls`` with a random colour tone."""
        return self.cv.new(cls, float(self.rng.random()))

    def depth(self, near: tuple[float, float], far: tuple[float, float], p_near: float,
              x: float = 0.0) -> float:
        """Depth of a street object at lateral ``x``: uniform in ``near`` with probability
        ``p_near``, else in ``far`` (the near/far mixture that keeps thin classes token-sized).
        Near depths start where ``x`` enters the view (|x| / Z <= 0.5), so they are seen."""
        lo, hi = near if self.rng.random() < p_near else far
        return self.U(min(max(lo, 2.0 * abs(x)), hi), hi)

    def add(self, z: float, layer: int, fn: Callable, *args) -> None:
        self.ops.append((z, layer, lambda: fn(self.cv, self.cam, *args)))

    def draw(self) -> None:
        for _, _, fn in sorted(self.ops, key=lambda o: (o[1], -o[0])):
            fn()


def _skyline(b: _Builder, zf: float) -> None:
    """Layer 0: far buildings and tree lines across the whole view at depth ``zf``."""
    x = -1.6 * zf
    while x < 1.6 * zf:
        w = b.U(0.05, 0.25) * zf
        kind = b.rng.random()
        if kind < 0.75:
            c = BUILDING if kind < 0.5 else VEG
            h = b.U(0.02, 0.15) * zf if c == BUILDING else b.U(0.02, 0.06) * zf
            b.add(zf, 0, ob.face_rect, x, x + w, zf, 0.0, h, b.new(c))
        x += w


def _building_line(b: _Builder, s: int, side: tuple, cross, zf: float) -> None:
    """Layer 1: facades (with windows), long walls and gaps with trees along one side;
    layer 2: fences, low walls and hedges on the outer sidewalk edge."""
    U, rng = b.U, b.rng
    e_walk, e_build = side[2], side[3]
    park = rng.random() < 0.2
    z = U(-6, 4)
    while z < min(zf * 0.8, 110.0):
        ln = U(8, 35)
        if cross is not None and z < cross[1] and z + ln > cross[0] - 1:
            if cross[0] - 1 - z < 4:  # too short before the cross street: skip it
                z = cross[1] + 1
                continue
            ln = cross[0] - 1 - z
        r = rng.random()
        xb = s * (e_build + (U(0, 3) if rng.random() < 0.3 else 0.0))
        if park or r < 0.12:  # a gap: trees behind the line
            for _ in range(int(rng.integers(1, 4))):
                zt = z + U(0, ln)
                b.add(zt, 1, ob.tree, xb + s * U(1, 6), zt, U(1.5, 3.5), U(1.8, 3.5),
                      tuple((U(-.6, .6), U(-.2, .4), U(.6, 1.0)) for _ in range(3)), b.new(VEG))
        elif r < 0.28:  # a long wall with a tree behind it
            h = U(1.2, 3.2)
            b.add(z, 1, ob.box, *sorted((xb, xb + s * 0.4)), z, ln, 0.0, h, b.new(WALL))
            zt = z + U(0, ln)
            b.add(zt + 1, 1, ob.tree, xb + s * U(2, 6), zt, U(1.5, 3.0), U(2, 3.5), ((0, 0, 1),),
                  b.new(VEG))
        else:
            h = U(6, 28)
            pat = _facade(z, h, U(2.8, 3.6), U(2.0, 3.5), U(0.35, 0.6), U(0.35, 0.55),
                          U(0.1, 0.5), U(0, 100))
            b.add(z, 1, ob.box, *sorted((xb, xb + s * 14.0)), z, ln, 0.0, h, b.new(BUILDING), pat)
        z += ln + (U(2, 10) if rng.random() < 0.25 else 0.0)
    for _ in range(int(rng.integers(0, 3))):
        kind = rng.choice(3, p=(0.4, 0.4, 0.2))
        z0, ln = U(2, 40), U(4, 25)
        x0 = s * e_walk
        xs = sorted((x0, x0 + s * 0.25))
        if kind == 0:
            b.add(z0, 2, ob.box, *xs, z0, ln, 0.0, U(1.0, 2.2), b.new(FENCE), _fence(z0))
        elif kind == 1:
            b.add(z0, 2, ob.box, *xs, z0, ln, 0.0, U(0.6, 2.0), b.new(WALL))
        else:
            b.add(z0, 2, ob.box, *sorted((x0, x0 + s * 0.8)), z0, ln, 0.0, U(0.8, 1.8), b.new(VEG))


def _sign_pole(cv: Canvas, cam: Camera, X: float, Z: float, y0: float, signs: list,
               pid: int, sid: int) -> None:
    ob.pole(cv, cam, X, Z, y0 + 0.3, pid, 0.35)
    for k, (shape, size) in enumerate(signs):
        ob.traffic_sign(cv, cam, X, Z, y0 - k * (size + 0.1), shape, size, sid)


def _mast_arm(cv: Canvas, cam: Camera, xa: float, xb: float, z: float, top: float,
              inst: int) -> None:
    cv.thick_line(cam.x(xa, z), cam.y(top, z), cam.x(xb, z), cam.y(top, z),
                  max(ob.thin(z), cam.px(0.15, z)), inst, NONE, z)


def _sidewalk(b: _Builder, s: int, side: tuple, cross) -> None:
    """Layer 3 on one sidewalk: lamps, trees, sign poles, bollards, traffic lights,
    pedestrians and parked two-wheelers."""
    U, rng = b.U, b.rng
    road_e, e_verge, e_walk = side[:3]
    if rng.random() < 0.7:
        z, step = U(3, 20), U(15, 35)
        while z < 90:
            b.add(z, 3, ob.street_lamp, s * (e_verge + 0.5), z, U(6.5, 9), -s * U(1.2, 2.5),
                  b.new(POLE))
            z += step
    if rng.random() < 0.6:
        z, step = U(3, 15), U(7, 18)
        for _ in range(int(rng.integers(2, 8))):
            xt = s * (e_verge + U(0.6, 1.2)) if e_verge == road_e else \
                s * (road_e + U(0.3, 0.8) * (e_verge - road_e))
            lobes = tuple((U(-.5, .5), U(-.2, .3), U(.6, 1.0))
                          for _ in range(int(rng.integers(1, 4))))
            b.add(z, 3, ob.tree, xt, z, U(1.8, 3.0), U(1.5, 3.2), lobes, b.new(VEG))
            z += step
    for _ in range(rng.poisson(1.4)):  # sign poles with one or two signs
        xs = s * (e_verge + U(0.3, 1.0))
        z = b.depth((5, 15), (15, 45), 0.5, xs)
        signs = [(int(rng.integers(0, 4)), U(0.9, 1.4)) for _ in range(1 + int(rng.random() < 0.3))]
        pid, sid = b.new(POLE), b.new(SIGN)
        b.add(z, 3, _sign_pole, xs, z, U(2.2, 3.0), signs, pid, sid)
    for _ in range(rng.poisson(1.0)):  # bollards / bare poles
        xp = s * (e_verge + U(0.2, 0.6))
        z = b.depth((4, 12), (12, 40), 0.5, xp)
        b.add(z, 3, ob.pole, xp, z, U(1.0, 4.0), b.new(POLE), 0.4)
    if cross is not None or rng.random() < 0.45:  # signals at the crossing
        zl = cross[0] - U(0.5, 2.0) if cross is not None else U(8, 25)
        red = bool(rng.random() < 0.5)
        xl = s * (e_verge + 0.4)
        pid, lid = b.new(POLE), b.new(LIGHT)
        b.add(zl, 3, ob.pole, xl, zl, U(2.6, 3.4), pid, 0.4)
        b.add(zl - 0.01, 3, ob.traffic_light, xl, zl, 2.2, red, lid)
        if rng.random() < 0.6:  # overhead mast with 1-3 signal heads
            reach, top = U(3, 7), U(5.5, 6.5)
            mid = b.new(POLE)
            b.add(zl + 0.3, 3, ob.pole, xl, zl + 0.3, top, mid, 0.5)
            b.add(zl + 0.3, 3, _mast_arm, xl, xl - s * reach, zl + 0.3, top, mid)
            for j in range(int(rng.integers(1, 4))):
                b.add(zl + 0.29, 3, ob.traffic_light, xl - s * reach * (0.35 + 0.4 * j),
                      zl + 0.3, top - 1.5, red, b.new(LIGHT))
    for _ in range(rng.poisson(2.2)):  # pedestrians, some in pairs
        xp = s * U(e_verge + 0.3, e_walk - 0.3)
        z = b.depth((4, 14), (14, 45), 0.5, xp)
        b.add(z, 3, ob.person, xp, z, U(1.55, 1.95), U(0, 0.6), b.new(PERSON))
        if rng.random() < 0.35:
            zc = z + U(-0.4, 0.4)
            b.add(zc, 3, ob.person, xp + U(0.7, 0.9) * rng.choice((-1, 1)), zc, U(1.55, 1.95),
                  U(0, 0.6), b.new(PERSON))
    if rng.random() < 0.3:  # parked bicycles / motorcycles
        motor = bool(rng.random() < 0.4)
        z, d = U(4, 25), int(rng.choice((-1, 1)))
        for _ in range(int(rng.integers(1, 4))):
            b.add(z, 3, ob.two_wheeler, motor, s * (e_verge + U(0.5, 1.2)), z, d,
                  b.new(MOTORCYCLE if motor else BICYCLE), None)
            z += U(0.6, 2.0)


def _traffic(b: _Builder, st: Street) -> None:
    """Layer 3 on the road: a tram, cars / trucks / buses per lane (some lanes parked),
    ridden bicycles and motorcycles, people on the crosswalk."""
    U, rng = b.U, b.rng
    n_lanes = len(st.centres)
    occupied: list[tuple[int, float, float]] = []
    if rng.random() < 0.3:  # tram on rails in one lane
        lane = int(rng.integers(0, n_lanes))
        z0, ln = U(6, 35), U(22, 32)
        b.add(z0, 3, ob.vehicle, "train", st.centres[lane], z0, (2.65, ln, 3.5), b.new(TRAIN),
              lane < st.n_left)
        st.rails = [st.centres[lane] - 0.72, st.centres[lane] + 0.72]
        occupied.append((lane, z0 - 3, z0 + ln + 3))
    for lane, xc in enumerate(st.centres):
        parked = lane in (0, n_lanes - 1) and n_lanes >= 3 and rng.random() < 0.4
        if rng.random() > (0.8 if parked else 0.7):
            continue
        z = U(3, 12) if abs(xc) > 1.5 else U(8, 20)
        while z < 90:
            kind = "car" if parked else str(rng.choice(("car", "truck", "bus"),
                                                       p=(0.76, 0.11, 0.13)))
            dims = {"car": (U(1.65, 1.95), U(3.8, 4.9), U(1.35, 1.6)),
                    "truck": (U(2.3, 2.5), U(7, 10), U(3.2, 3.9)),
                    "bus": (2.55, U(10.5, 12.5), U(3.0, 3.3))}[kind]
            if not any(lane == o[0] and o[1] < z + dims[1] and z < o[2] for o in occupied):
                cls = {"car": CAR, "truck": TRUCK, "bus": BUS}[kind]
                b.add(z, 3, ob.vehicle, kind, xc + U(-0.25, 0.25), z, dims, b.new(cls),
                      lane < st.n_left)
            z += dims[1] + (U(1.0, 8.0) if parked else U(4, 30))
    for _ in range(rng.poisson(1.4)):  # ridden two-wheelers
        motor = bool(rng.random() < 0.45)
        z = b.depth((5, 14), (14, 35), 0.5)
        if motor:
            xr = U(-st.road_l + 0.8, st.road_r - 0.8)
        else:
            xr = st.road_r - U(0.6, 1.5) if rng.random() < 0.6 else -st.road_l + U(0.6, 1.5)
        b.add(z, 3, ob.two_wheeler, motor, xr, z, int(rng.choice((-1, 1))),
              b.new(MOTORCYCLE if motor else BICYCLE), b.new(RIDER))
    if st.cross is not None and rng.random() < 0.6:  # people on the crosswalk
        for _ in range(int(rng.integers(1, 6))):
            z = st.cross[0] - U(1.2, 3.6)
            b.add(z, 3, ob.person, U(-st.road_l, st.road_r), z, U(1.55, 1.95), U(0.2, 0.7),
                  b.new(PERSON))
    if rng.random() < 0.3:  # people crossing mid-block, near the camera
        for _ in range(int(rng.integers(1, 4))):
            z = U(5, 14)
            b.add(z, 3, ob.person, U(-st.road_l, st.road_r), z, U(1.55, 1.95), U(0.2, 0.7),
                  b.new(PERSON))


def make_scene(seed: int, index: int, size: tuple[int, int]) -> Scene:
    """Sample the layout of ``(seed, index)`` and rasterise it at ``size = (H, W)``."""
    H, W = int(size[0]), int(size[1])
    if H < 8 or W < 8:
        raise ValueError(f"size must be at least 8x8, got {size}")
    rng = layout_rng(seed, index)
    U = rng.uniform
    cam = Camera(H, W, horizon=U(0.36, 0.47), f=U(1.4, 1.8), hc=U(1.4, 1.9), yaw=U(-0.1, 0.1))
    cv = Canvas(H, W, fill=SKY)
    b = _Builder(rng, cv, cam)
    ground_inst = {c: b.new(c) for c in (ROAD, SIDEWALK, TERRAIN)}
    st = sample_street(rng)
    zf = b.U(120, 350)
    _skyline(b, zf)
    for s, side in zip((-1, 1), st.sides):
        _building_line(b, s, side, st.cross, zf)
        _sidewalk(b, s, side, st.cross)
    _traffic(b, st)
    hood = rng.random() < 0.25
    hood_h = b.U(0.06, 0.12)
    # --- rasterise: ground, then all queued draw calls, then the ego hood (ignore) -------
    draw_ground(cv, cam, st, ground_inst)
    b.draw()
    if hood:
        hid = b.new(IGNORE_INDEX)
        cv.ellipse(W / 2, H * (1.0 + 2.5 * hood_h), W * 0.75, H * 3.5 * hood_h, hid,
                   NONE, ob.FRONT, 1.0)
    lights = np.array(cv.lights, np.float32).reshape(-1, 4)
    return Scene(cv.label, cv.inst, cv.part, cv.face, cv.depth, np.array(cv.inst_cls),
                 np.array(cv.inst_tone, np.float32), lights, cam.horizon, cam)
