"""GeoJSON: `write_geojson`, a FeatureCollection of the submissions that have a point."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec

from ..instance import parse_geopoint
from ..tabular import Layout, geopoint_field, typed
from .records import CHUNK, Record


def write_geojson(layout: Layout, records: Iterable[Record]) -> Iterator[bytes]:
    """A FeatureCollection: one Point Feature per submission whose first geopoint outside a
    repeat is answered (`id` = the submission's KEY); properties are the root table's columns,
    numbers typed."""
    point = geopoint_field(layout.schema)
    columns = layout.root.columns
    at = next((i for i, c in enumerate(columns) if c.field is point and c.part == 0), None)
    encoder = msgspec.json.Encoder()
    buffer = bytearray(b'{"type":"FeatureCollection","features":[')
    first = True
    for record in records if at is not None else ():
        row = layout.rows(record.meta, record.values)[0][1]
        coordinates = _coordinates(row[at : at + 3])
        if coordinates is None:
            continue
        feature = {
            "type": "Feature",
            "id": record.meta.instance_id,
            "geometry": {"type": "Point", "coordinates": coordinates},
            "properties": {c.name: typed(c, v) for c, v in zip(columns, row)},
        }
        if not first:
            buffer += b","
        first = False
        buffer += encoder.encode(feature)
        if len(buffer) >= CHUNK:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]}"
    yield bytes(buffer)


def _coordinates(parts: Sequence[Any]) -> list[float] | None:
    """GeoJSON's [lon, lat(, altitude)] of a geopoint's split columns (lat, lon, altitude)."""
    point = parse_geopoint(" ".join(p for p in parts if isinstance(p, str)))
    if point is None:
        return None
    if point.altitude is None:
        return [point.lon, point.lat]
    return [point.lon, point.lat, point.altitude]
