"""How people travel: modes, speeds, the time limit and the distance it allows; the facility layer and kind asked
for (which layers serve the settlements is the registry's to say: ``Layer.network``).

Speeds are settings (environment variables with the ``GIS_`` prefix) with these defaults:

- walk 4.8 km/h: 15 minutes = 1,200 m along roads, inside the 1,100–1,250 m that GB 50180-2018's 15-minute
  walking circle implies at 4.5–5 km/h;
- cycle 12 km/h: 15 minutes = 3,000 m;
- drive by road class (urban arterial 40, urban secondary 30, urban branch 20, county 50, township 40, village 25,
  path 10 km/h); the drive mode's nominal speed (30 km/h) gives its straight-line limit for ``method=euclidean``.

Network costs are travel times in seconds; the connector from a settlement or facility to the nearest point on
the nearest road is travelled at the speed of that road.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gis_service.errors import InvalidInputError
from gis_service.layers import FACILITY_LAYERS, Layer
from gis_service.layers.base import POPULATIONS, Population
from gis_service.layers.registry import ROADS

#: The road classes, in the registry's order.
ROAD_CLASSES = ROADS.field_named("road_class").codes
#: The travel modes and their Chinese names.
MODE_LABELS_ZH = {"walk": "步行", "cycle": "骑行", "drive": "驾车"}
MODES = tuple(MODE_LABELS_ZH)
METHODS = ("network", "euclidean")
MAX_MINUTES = 120
#: Two costs closer than this (in seconds) are equal: a settlement exactly at the limit is served.
COST_TOLERANCE_S = 1e-3

DEFAULT_DRIVE_SPEEDS_KMH = {
    "urban_arterial": 40.0, "urban_secondary": 30.0, "urban_branch": 20.0,
    "county": 50.0, "township": 40.0, "village": 25.0, "path": 10.0,
}


class AnalysisSettings(BaseSettings):
    """Speeds of the travel modes (env ``GIS_WALK_SPEED_KMH``, ``GIS_CYCLE_SPEED_KMH``, ``GIS_DRIVE_SPEED_KMH``,
    ``GIS_DRIVE_SPEEDS_KMH`` as JSON by road class)."""

    model_config = SettingsConfigDict(env_prefix="GIS_", env_file=".env", extra="ignore")

    walk_speed_kmh: float = Field(default=4.8, gt=0, le=10, description="Walking speed.")
    cycle_speed_kmh: float = Field(default=12.0, gt=0, le=40, description="Cycling speed.")
    drive_speed_kmh: float = Field(default=30.0, gt=0, le=120,
                                   description="Nominal driving speed: the straight-line limit of method=euclidean.")
    drive_speeds_kmh: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_DRIVE_SPEEDS_KMH),
                                               description="Driving speed by road class.")

    def speeds_by_class(self, mode: str) -> dict[str, float]:
        """km/h for every road class in ``mode``."""
        check_mode(mode)
        if mode == "walk":
            return dict.fromkeys(ROAD_CLASSES, self.walk_speed_kmh)
        if mode == "cycle":
            return dict.fromkeys(ROAD_CLASSES, self.cycle_speed_kmh)
        speeds = {**DEFAULT_DRIVE_SPEEDS_KMH, **self.drive_speeds_kmh}
        return {c: float(speeds[c]) for c in ROAD_CLASSES}

    def nominal_speed(self, mode: str) -> float:
        check_mode(mode)
        return {"walk": self.walk_speed_kmh, "cycle": self.cycle_speed_kmh, "drive": self.drive_speed_kmh}[mode]

    def fingerprint(self) -> dict:
        """What a built network's costs depend on, recorded with it."""
        return {mode: self.speeds_by_class(mode) for mode in MODES}


@dataclass(frozen=True)
class Travel:
    """A travel mode and time limit: what every answer states."""

    mode: str
    minutes: float
    speed_kmh: float
    speeds_kmh_by_road_class: dict[str, float]
    #: Where the mode and minutes come from: ``asked``, or the kind's default reach and why (:func:`travel_for`).
    chosen: str = "asked"

    @property
    def limit_s(self) -> float:
        return self.minutes * 60.0

    @property
    def limit_m(self) -> float:
        """Distance covered in ``minutes`` at the mode's nominal speed, in metres (exact along roads for walk and
        cycle; for drive the straight-line limit of the euclidean method)."""
        return self.speed_kmh * 1000.0 / 60.0 * self.minutes

    @property
    def uniform_speed(self) -> bool:
        return len(set(self.speeds_kmh_by_road_class.values())) == 1

    def metres_per_second(self, road_classes: np.ndarray) -> np.ndarray:
        """Speed in m/s for each road class in ``road_classes``."""
        lookup = {c: v / 3.6 for c, v in self.speeds_kmh_by_road_class.items()}
        return np.array([lookup[c] for c in road_classes], dtype=float) if len(road_classes) else np.zeros(0)

    def describe(self) -> dict:
        return {
            "mode": self.mode,
            "speed_kmh": self.speed_kmh,
            "speeds_kmh_by_road_class": None if self.uniform_speed else self.speeds_kmh_by_road_class,
            "minutes": self.minutes,
            "limit_s": self.limit_s,
            "limit_m": round(self.limit_m, 3),
            "travel_chosen": self.chosen,
        }


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InvalidInputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def check_minutes(minutes: float) -> float:
    """A travel time limit: more than 0 and at most MAX_MINUTES."""
    if not (minutes > 0 and minutes <= MAX_MINUTES):
        raise InvalidInputError(f"minutes must be more than 0 and at most {MAX_MINUTES}; got {minutes}")
    return minutes


def make_travel(settings: AnalysisSettings, *, mode: str, minutes: float) -> Travel:
    """Check ``mode`` and ``minutes`` (0 < minutes ≤ 120) and return the travel they mean."""
    check_mode(mode)
    check_minutes(minutes)
    return Travel(mode=mode, minutes=float(minutes), speed_kmh=settings.nominal_speed(mode),
                  speeds_kmh_by_road_class=settings.speeds_by_class(mode))


def travel_for(settings: AnalysisSettings, layer: Layer, kind: str | None, *, mode: str | None,
               minutes: float | None) -> Travel:
    """The travel asked for; where ``mode`` or ``minutes`` is not named (None), the default reach the registry
    declares for ``kind`` (:meth:`NetworkRole.reach`), and ``chosen`` says so."""
    reach = layer.network.reach(kind)
    travel = make_travel(settings, mode=reach.mode if mode in (None, "") else mode,
                         minutes=reach.minutes if minutes is None else minutes)
    if mode not in (None, "") and minutes is not None:
        return travel
    named = f"{kind} ({layer.field_named(layer.network.kind).label_of(kind)})" if kind else f"every kind of {layer.id}"
    taken = " and ".join(w for w, missing in (("mode", mode in (None, "")), ("minutes", minutes is None)) if missing)
    return replace(travel, chosen=f"{taken} not given: the default for {named}, {reach.mode} {reach.minutes:g} min "
                                  f"({reach.why})")


# -- facility layers ------------------------------------------------------------------------------------------

def check_facilities(layer: str, kind: str | None) -> tuple[Layer, str | None]:
    """The facility layer and kind asked for; a plain InvalidInputError naming the choices otherwise. Only the
    layer's features that count (``status = 'existing'``) serve."""
    spec = FACILITY_LAYERS.get(layer)
    if spec is None:
        raise InvalidInputError(f"layer must be one of {', '.join(FACILITY_LAYERS)}; got {layer!r}")
    if kind in (None, ""):
        return spec, None
    if not spec.kinds:
        raise InvalidInputError(f"layer {layer} has no kinds; leave kind empty")
    if kind not in spec.kinds:
        raise InvalidInputError(f"kind must be one of {', '.join(spec.kinds)} for layer {layer}; got {kind!r}")
    return spec, kind


def check_population(layer: Layer, kind: str | None, population: str | None) -> Population:
    """The households asked for by ``population``, else those the layer declares ``kind`` is for."""
    if population in (None, ""):
        return layer.network.population(kind)
    if population not in POPULATIONS:
        raise InvalidInputError(f"population must be one of {', '.join(POPULATIONS)}; got {population!r}")
    return POPULATIONS[population]


def describe_population(population: Population) -> dict:
    """What an answer says of the households it counted (``served_population``)."""
    return {"code": population.code, "label_zh": population.label_zh, "description": population.description}
