"""Domain styles: how one street layout looks in each synthetic "dataset".

A :class:`Style` is pure appearance: per-class colour sets (an instance picks one with
its tone), texture strength per class, face shading, sky, colour grading, camera
artefacts and an optional weather. The key idea of the benchmark is that every domain
renders the *same* layouts, so a source-trained model's drop on another domain is caused
by appearance alone, as for GTAV -> Cityscapes / BDD / Mapillary / ACDC:

* ``source``: clean, saturated, flat-ish shading, no sensor artefacts (GTAV analogue).
* ``citys``: overcast, desaturated greys and olive vegetation, soft blur (Cityscapes).
* ``bdd``: warm dash-cam look, washed-out sky, hard sun shadows, JPEG blocks (BDD100K).
* ``mapillary``: vivid, every image a different camera / colour cast (Mapillary Vistas).
* ``fog`` / ``night`` / ``rain`` / ``snow``: the ``citys`` look plus weather (ACDC).

Taught in ``notebooks/00_setup_and_benchmark.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

SOURCE_DOMAINS = ("source",)
TARGET_DOMAINS = ("citys", "bdd", "mapillary")
ADVERSE_DOMAINS = ("fog", "night", "rain", "snow")
DOMAINS = SOURCE_DOMAINS + TARGET_DOMAINS + ADVERSE_DOMAINS
HOOD = 19  # colour slot of the ego-vehicle hood (label 255)

Colours = tuple[tuple[float, float, float], ...]

# Part colours (see draw.py part codes): glass, tyre, marking, lamp, tail, head, trunk,
# skin, lower clothes, curb, rail, signal red, signal green, sign face, lit window, frame.
PARTS = np.array([
    (0, 0, 0), (0.16, 0.2, 0.26), (0.06, 0.06, 0.07), (0.92, 0.92, 0.9), (0.95, 0.9, 0.7),
    (0.75, 0.05, 0.05), (0.95, 0.95, 0.9), (0.3, 0.22, 0.15), (0.85, 0.65, 0.5),
    (0.15, 0.17, 0.25), (0.75, 0.75, 0.72), (0.55, 0.55, 0.58), (0.95, 0.1, 0.05),
    (0.1, 0.9, 0.4), (0.95, 0.95, 0.95), (0.16, 0.2, 0.26), (0.2, 0.2, 0.2)], np.float32)


def _tex(default: tuple, **per_class: tuple) -> np.ndarray:
    """(20, 3) texture amplitudes (fine, mid, coarse) with per-class overrides."""
    names = ("road", "sidewalk", "building", "wall", "fence", "pole", "light", "sign",
             "veg", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
             "moto", "bike", "hood")
    t = np.tile(np.array(default, np.float32), (20, 1))
    for k, v in per_class.items():
        t[names.index(k)] = v
    return t


@dataclass(frozen=True)
class Style:
    """Appearance parameters of one domain (all colours sRGB in [0, 1])."""
    name: str
    colours: tuple[Colours, ...]            # 20 colour sets: 19 classes + ego hood
    sky: tuple[tuple, tuple] = ((0.3, 0.55, 0.95), (0.72, 0.85, 1.0))  # zenith, horizon
    clouds: float = 0.2                     # cloud cover in [0, 1]
    tex: np.ndarray = field(default_factory=lambda: _tex((0.02, 0.03, 0.04)))
    tex_period: tuple[float, float] = (4.0, 24.0)  # mid / coarse period at H = 112
    shade: tuple[float, float, float, float] = (1.0, 0.85, 1.1, 1.0)  # front/side/top/ground
    shadows: float = 0.0                    # strength of cast shadows on the ground
    haze: float = 500.0                     # aerial perspective distance, metres
    haze_colour: tuple = (0.75, 0.82, 0.92)
    wb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    gamma: float = 1.0
    jitter: float = 0.0                     # per-image random exposure / colour cast
    hue_jitter: float = 0.0                 # per-image per-class hue jitter, degrees
    blur: float = 0.0                       # optics blur sigma at H = 112
    noise: float = 0.0                      # sensor noise std
    vignette: float = 0.0
    jpeg: float = 0.0                       # 8x8 chroma/luma blockiness in [0, 1]
    chroma: int = 0                         # lateral chromatic aberration, pixels
    marking: tuple = (0.92, 0.92, 0.9)
    weather: str | None = None


SOURCE_COLOURS: tuple[Colours, ...] = (
    ((0.36, 0.35, 0.39),),                                                  # road
    ((0.72, 0.66, 0.6),),                                                   # sidewalk
    ((0.82, 0.62, 0.45), (0.72, 0.72, 0.75), (0.88, 0.82, 0.64), (0.62, 0.4, 0.32),
     (0.55, 0.66, 0.78)),                                                   # building
    ((0.74, 0.72, 0.64), (0.64, 0.6, 0.56)),                                # wall
    ((0.58, 0.46, 0.3), (0.42, 0.44, 0.46)),                                # fence
    ((0.52, 0.54, 0.58),),                                                  # pole
    ((0.12, 0.12, 0.1), (0.88, 0.72, 0.08)),                                # traffic light
    ((0.88, 0.1, 0.1), (0.1, 0.3, 0.88), (0.95, 0.82, 0.1)),                # traffic sign
    ((0.2, 0.52, 0.12), (0.3, 0.58, 0.16)),                                 # vegetation
    ((0.52, 0.66, 0.24),),                                                  # terrain
    ((0.45, 0.65, 0.95),),                                                  # sky
    ((0.85, 0.2, 0.2), (0.2, 0.3, 0.85), (0.92, 0.92, 0.92), (0.2, 0.65, 0.3),
     (0.92, 0.72, 0.2), (0.15, 0.15, 0.15)),                                # person
    ((0.9, 0.4, 0.1), (0.1, 0.5, 0.8), (0.2, 0.2, 0.2), (0.85, 0.85, 0.2)),  # rider
    ((0.88, 0.1, 0.1), (0.1, 0.25, 0.88), (0.95, 0.95, 0.95), (0.08, 0.08, 0.08),
     (0.95, 0.75, 0.1), (0.2, 0.72, 0.3), (0.6, 0.62, 0.66)),              # car
    ((0.92, 0.92, 0.92), (0.2, 0.3, 0.65), (0.85, 0.42, 0.1)),               # truck
    ((0.95, 0.8, 0.1), (0.88, 0.15, 0.15), (0.95, 0.95, 0.95)),              # bus
    ((0.95, 0.85, 0.2), (0.92, 0.22, 0.2)),                                 # train
    ((0.1, 0.1, 0.1), (0.82, 0.1, 0.1), (0.2, 0.2, 0.72)),                  # motorcycle
    ((0.1, 0.1, 0.1), (0.2, 0.42, 0.85), (0.85, 0.2, 0.2)),                 # bicycle
    ((0.1, 0.1, 0.12),),                                                    # ego hood
)


def recolour(base: tuple[Colours, ...], **new: Colours) -> tuple[Colours, ...]:
    """Replace the colour sets of the named classes (names as in ``_tex``)."""
    names = ("road", "sidewalk", "building", "wall", "fence", "pole", "light", "sign",
             "veg", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
             "moto", "bike", "hood")
    out = list(base)
    for k, v in new.items():
        out[names.index(k)] = v
    return tuple(out)


CITYS_COLOURS = recolour(
    SOURCE_COLOURS,
    road=((0.4, 0.4, 0.41),), sidewalk=((0.56, 0.53, 0.53),),
    building=((0.74, 0.7, 0.62), (0.54, 0.54, 0.55), (0.78, 0.68, 0.56), (0.64, 0.6, 0.58)),
    wall=((0.6, 0.6, 0.58), (0.5, 0.48, 0.47)), fence=((0.42, 0.42, 0.4), (0.5, 0.44, 0.36)),
    pole=((0.38, 0.4, 0.42),), veg=((0.3, 0.36, 0.18), (0.22, 0.3, 0.15)),
    terrain=((0.46, 0.45, 0.3),),
    person=((0.2, 0.2, 0.22), (0.4, 0.38, 0.36), (0.6, 0.2, 0.2), (0.25, 0.3, 0.45)),
    car=((0.3, 0.3, 0.32), (0.1, 0.1, 0.11), (0.82, 0.82, 0.82), (0.55, 0.57, 0.6),
         (0.15, 0.2, 0.35), (0.45, 0.12, 0.12)),
    truck=((0.8, 0.8, 0.78), (0.35, 0.4, 0.45)), bus=((0.85, 0.85, 0.82), (0.7, 0.2, 0.15)),
    train=((0.85, 0.85, 0.8), (0.2, 0.35, 0.6)), hood=((0.75, 0.75, 0.78),))

BDD_COLOURS = recolour(
    CITYS_COLOURS,
    road=((0.42, 0.4, 0.36),), sidewalk=((0.74, 0.7, 0.63),),
    building=((0.66, 0.55, 0.45), (0.82, 0.76, 0.66), (0.46, 0.36, 0.3), (0.62, 0.62, 0.56)),
    veg=((0.26, 0.4, 0.14), (0.35, 0.42, 0.2)), terrain=((0.6, 0.52, 0.32),),
    car=((0.85, 0.85, 0.85), (0.6, 0.6, 0.62), (0.1, 0.1, 0.1), (0.55, 0.08, 0.08),
         (0.2, 0.25, 0.4)),
    bus=((0.92, 0.72, 0.1), (0.85, 0.85, 0.85)), hood=((0.05, 0.05, 0.05),))

MAPILLARY_COLOURS = recolour(
    SOURCE_COLOURS,
    road=((0.5, 0.49, 0.48),), sidewalk=((0.62, 0.48, 0.42), (0.5, 0.52, 0.56)),
    building=((0.9, 0.85, 0.75), (0.85, 0.5, 0.4), (0.45, 0.6, 0.55), (0.9, 0.75, 0.45),
              (0.5, 0.45, 0.6)),
    veg=((0.25, 0.55, 0.2), (0.15, 0.42, 0.2)), terrain=((0.55, 0.45, 0.3),),
    fence=((0.3, 0.5, 0.35), (0.7, 0.7, 0.7)), wall=((0.85, 0.8, 0.7), (0.55, 0.35, 0.3)),
    car=((0.75, 0.75, 0.78), (0.9, 0.9, 0.9), (0.15, 0.15, 0.15), (0.3, 0.4, 0.55),
         (0.6, 0.2, 0.15)))

TEXTURED = _tex((0.05, 0.06, 0.08), road=(0.08, 0.05, 0.1), sidewalk=(0.05, 0.1, 0.1),
                building=(0.05, 0.1, 0.16), veg=(0.08, 0.35, 0.2), terrain=(0.1, 0.25, 0.2),
                sky=(0.0, 0.0, 0.0), wall=(0.05, 0.1, 0.15))

STYLES: dict[str, Style] = {
    "source": Style("source", SOURCE_COLOURS,
                    tex=_tex((0.01, 0.02, 0.03), veg=(0.02, 0.08, 0.05), terrain=(0.02, 0.05, 0.04),
                             sky=(0, 0, 0)),
                    saturation=1.15),
    "citys": Style("citys", CITYS_COLOURS, sky=((0.74, 0.79, 0.85), (0.88, 0.9, 0.92)),
                   clouds=0.6, tex=TEXTURED, tex_period=(3.0, 16.0), shade=(1.0, 0.75, 1.12, 1.0),
                   haze=300.0, haze_colour=(0.85, 0.87, 0.9), wb=(0.98, 1.0, 1.02),
                   saturation=0.7, contrast=0.92, gamma=1.05, jitter=0.05, hue_jitter=4.0,
                   blur=0.55, noise=0.015, vignette=0.15),
    "bdd": Style("bdd", BDD_COLOURS, sky=((0.8, 0.85, 0.9), (0.97, 0.97, 0.96)), clouds=0.3,
                 tex=TEXTURED * 1.2, tex_period=(3.0, 20.0), shade=(1.0, 0.6, 1.3, 1.0),
                 shadows=0.45, haze=250.0, haze_colour=(0.9, 0.88, 0.85), wb=(1.08, 1.0, 0.86),
                 contrast=1.15, saturation=0.85, gamma=0.95, jitter=0.1, hue_jitter=6.0,
                 blur=0.8, noise=0.025, vignette=0.35, jpeg=0.6, marking=(0.95, 0.8, 0.2)),
    "mapillary": Style("mapillary", MAPILLARY_COLOURS, sky=((0.2, 0.45, 0.85), (0.62, 0.76, 0.9)),
                       clouds=0.35, tex=TEXTURED, tex_period=(2.5, 12.0),
                       shade=(1.0, 0.7, 1.2, 1.0),
                       shadows=0.3, haze=400.0, saturation=1.1, contrast=1.05, jitter=0.18,
                       hue_jitter=12.0, blur=0.4, noise=0.015, vignette=0.2, chroma=1),
}
_ADVERSE_BASE = replace(STYLES["citys"], jitter=0.04)
STYLES.update({
    "fog": replace(_ADVERSE_BASE, name="fog", weather="fog", clouds=0.0, saturation=0.6),
    "night": replace(_ADVERSE_BASE, name="night", weather="night", clouds=0.0, noise=0.04,
                     blur=0.8),
    "rain": replace(_ADVERSE_BASE, name="rain", weather="rain", clouds=0.8, saturation=0.55,
                    sky=((0.55, 0.57, 0.6), (0.7, 0.72, 0.74)), blur=0.8),
    "snow": replace(_ADVERSE_BASE, name="snow", weather="snow", clouds=0.5, saturation=0.6,
                    sky=((0.7, 0.72, 0.76), (0.86, 0.87, 0.9))),
})


def get_style(domain: str) -> Style:
    """The :class:`Style` of ``domain``; ValueError listing the domains otherwise."""
    if domain not in STYLES:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    return STYLES[domain]


def colour_table(style: Style) -> tuple[np.ndarray, np.ndarray]:
    """Padded (20, K, 3) colour sets and (20,) set sizes for vectorised instance colours."""
    K = max(len(c) for c in style.colours)
    table = np.zeros((20, K, 3), np.float32)
    sizes = np.zeros(20, np.int64)
    for i, cs in enumerate(style.colours):
        table[i, :len(cs)] = cs
        sizes[i] = len(cs)
    return table, sizes
