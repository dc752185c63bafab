"""The ground plane of a street: cross-section sampling and per-pixel back-projection.

A :class:`Street` is a cross-section in metres measured outwards from the camera on each
side: road edge, an optional terrain verge, the sidewalk, an optional yard (terrain or
paving) up to the building line, and what lies beyond. :func:`draw_ground` back-projects
every pixel row below the horizon to its ground depth ``Z`` and every column to its
lateral position ``X = (x - cx) / f * Z``, then classifies the pixel by the band ``X``
falls in - exact perspective (the road converges to the vanishing point) at any size in
a few vectorised operations. Lane marks, the crosswalk, curbs and tram rails are *part*
codes: they change the appearance, never the label.

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..labels import CLASSES
from .draw import CURB, GROUND, MARKING, NONE, RAIL, Camera, Canvas

ROAD, SIDEWALK, TERRAIN = (CLASSES.index(n) for n in ("road", "sidewalk", "terrain"))
# one side of the street: road edge, verge end, walk end, building line (metres), yard class
Side = tuple[float, float, float, float, int]


@dataclass
class Street:
    """Cross-section of the street (metres) plus lanes, crossing and rails."""
    road_l: float                      # road half-width on the left of the camera
    road_r: float                      # ... and on the right
    sides: tuple[Side, Side]           # (left, right) band edges, measured outwards
    cross: tuple[float, float] | None  # depth range of a cross street
    centres: list[float]               # lane centres (X)
    n_left: int                        # lanes with oncoming traffic (left of the divider)
    marks: list[tuple[float, bool]]    # lane-mark X and whether it is dashed
    beyond: int                        # class beyond the building line
    rails: list[float] = field(default_factory=list)


def sample_street(rng: np.random.Generator) -> Street:
    """Draw a random street cross-section."""
    U = rng.uniform
    road_l, road_r = U(2.0, 7.5), U(2.5, 9.0)
    sides = []
    for road_e in (road_l, road_r):
        verge = U(0.8, 2.5) if rng.random() < 0.35 else 0.0
        walk = U(1.5, 4.5)
        yard_w = U(1.0, 8.0) if rng.random() < 0.45 else 0.0
        yard = TERRAIN if rng.random() < 0.7 else SIDEWALK
        e_walk = road_e + verge + walk
        sides.append((road_e, road_e + verge, e_walk, e_walk + yard_w, yard))
    cross = None
    if rng.random() < 0.45:
        z = U(12, 35)
        cross = (z, z + U(8, 14))
    width = road_l + road_r
    n_lanes = max(1, int(round(width / 3.2)))
    lw = width / n_lanes
    centres = [-road_l + lw * (i + 0.5) for i in range(n_lanes)]
    two_way = n_lanes >= 2 and rng.random() < 0.7
    n_left = n_lanes // 2 if two_way else 0
    marks = [(-road_l + lw * i, not (two_way and i == n_left)) for i in range(1, n_lanes)]
    beyond = TERRAIN if rng.random() < 0.6 else SIDEWALK
    return Street(road_l, road_r, (sides[0], sides[1]), cross, centres, n_left, marks, beyond)


def draw_ground(cv: Canvas, cam: Camera, st: Street, inst: dict[int, int]) -> None:
    """Fill every pixel below the horizon with its ground class, part, depth and instance."""
    r0 = int(np.ceil(cam.horizon * cam.H))
    if r0 >= cam.H:
        return
    Z = cam.ground_z(np.arange(r0, cam.H))[:, None]                       # (h, 1)
    xn = (np.arange(cam.W) + 0.5 - cam.W / 2) / (cam.f * cam.H) - cam.yaw  # (W,)
    X = xn[None, :] * Z                                                    # (h, W) lateral m
    cls = np.full(X.shape, st.beyond, np.uint8)
    part = np.zeros(X.shape, np.uint8)
    for sign, (e_road, e_verge, e_walk, e_build, yard) in zip((-1, 1), st.sides):
        d = X * sign                                                       # distance outwards
        for lo, hi, c in ((e_walk, e_build, yard), (e_verge, e_walk, SIDEWALK),
                          (e_road, e_verge, TERRAIN)):
            cls[(d >= lo) & (d < hi)] = c
        part[(d >= e_verge) & (d < e_verge + 0.25)] = CURB
    road = (X >= -st.road_l) & (X <= st.road_r)
    if st.cross is not None:
        zi0, zi1 = st.cross
        road |= (Z >= zi0) & (Z <= zi1)
        part[(Z > zi0 - 4.0) & (Z < zi0 - 0.8) & (X % 1.1 < 0.55) & road] = MARKING  # zebra
    cls[road] = ROAD
    part[road & (part != MARKING)] = NONE
    for xm, dashed in st.marks:
        m = (np.abs(X - xm) < 0.08) & road
        if dashed:
            m &= (Z % 9.0) < 3.5
        part[m] = MARKING
    for xr in st.rails:
        part[(np.abs(X - xr) < 0.05) & road] = RAIL
    lut = np.zeros(256, np.int32)                                          # class -> instance
    for c, i in inst.items():
        lut[c] = i
    sl = (slice(r0, cam.H), slice(0, cam.W))
    cv.label[sl], cv.inst[sl], cv.part[sl], cv.face[sl] = cls, lut[cls], part, GROUND
    cv.depth[sl] = np.broadcast_to(Z, X.shape)
