"""The schema as SQLAlchemy Core tables: every layer's from the registry, the service's own tables written out.

The migrations (hand-written DDL, frozen per revision) make the schema; these tables describe it for the code that
reads and writes it. ``alembic check`` compares the two (``tests/test_tables.py``): a column, type, nullability,
index or foreign key that differs is drift and fails the test, so the tables cannot silently go out of step.

Geometry columns are GeoAlchemy2 ``Geometry`` columns of the layer's type in the storage CRS (EPSG:4490). Their
GiST indexes are declared as the migrations name them (``<table>_geom``), rather than by GeoAlchemy2's
``spatial_index=True``, which would name them ``idx_<table>_geom``. CHECK constraints, triggers, functions and
sequences are the migrations' alone: alembic does not compare them.
"""

from __future__ import annotations

import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql as pg

from gis_service.layers import LAYERS
from gis_service.layers.base import Field, Layer
from gis_service.layers.registry import GAZETTEER
from gis_service.settings import STORAGE_SRID

metadata = sa.MetaData()

_TYPES = {"text": sa.Text, "integer": sa.Integer, "number": pg.DOUBLE_PRECISION, "boolean": sa.Boolean,
          "date": sa.Date, "text_list": lambda: pg.ARRAY(sa.Text)}
_STORAGE = {"varchar(12)": lambda: sa.String(12), "char(1)": lambda: sa.CHAR(1), "smallint": sa.SmallInteger,
            "bigint": sa.BigInteger, "real": pg.REAL}


def _prefix(name: str, column: str, where: str | None = None) -> tuple[str, tuple[str, ...], dict]:
    """A text_pattern_ops index on ``column`` (for ``LIKE 'prefix%'``), partial when ``where`` is given."""
    return name, (column,), {"ops": "text_pattern_ops", **({"postgresql_where": where} if where else {})}


#: Indexes of the layer tables besides the GiST index of ``geom``, by table: (name, columns, options), as the
#: migrations make them.
_INDEXES: dict[str, list[tuple[str, tuple[str, ...], dict]]] = {
    "admin_divisions": [
        # a code names one current division; earlier versions keep their own rows
        ("admin_divisions_current_code", ("code",), {"unique": True, "postgresql_where": "valid_to IS NULL"}),
        ("admin_divisions_code_version", ("code", "valid_from"), {"unique": True}),
        ("admin_divisions_parent", ("parent_code",), {}),
    ],
    "boundary_lines": [("boundary_lines_left", ("left_code",), {}), ("boundary_lines_right", ("right_code",), {})],
    "boundary_markers": [("boundary_markers_line", ("line_code",), {})],
    "roads": [("roads_name", ("name",), {})],
    "settlements": [("settlements_village", ("village_code",), {})],
    "place_names": [
        # with what 包含查询 filters and sorts on: an index-only scan of every name (migration 0011)
        ("place_names_name", ("name", "status", "category", "division_code", "id"), {}),
        ("place_names_division", ("division_code",), {}),
        ("place_names_successor", ("successor_id",), {"postgresql_where": "successor_id IS NOT NULL"}),
        ("place_names_division_prefix", ("division_code",), {"ops": "varchar_pattern_ops"}),
        # the search's indexes (migrations 0002, 0007): prefixes of names and keys, one-edit keys, trigrams
        *(_prefix(name, column) for name, column in (
            ("place_names_name_prefix", "name"), ("place_names_short_prefix", "name_short"),
            ("place_names_py_key", "py_key"), ("place_names_py_short_key", "py_short_key"),
            ("place_names_py_initials", "py_initials"))),
        *(_prefix(name, column, f"{column} IS NOT NULL") for name, column in (
            ("place_names_py_alt_key", "py_alt_key"), ("place_names_py_alt_short_key", "py_alt_short_key"),
            ("place_names_py_alt_initials", "py_alt_initials"))),
        *(_prefix(name, column, "category = 'administrative'") for name, column in (
            ("place_names_admin_name_prefix", "name"), ("place_names_admin_py_key", "py_key"),
            ("place_names_admin_py_initials", "py_initials"))),
        ("place_names_typo_keys", ("typo_keys",), {"postgresql_using": "gin"}),
        ("place_names_py_typo_keys", ("py_typo_keys",), {"postgresql_using": "gin"}),
        ("place_names_py_key_trgm", ("py_key",), {"postgresql_using": "gin", "ops": "gin_trgm_ops"}),
        ("place_names_name_trgm", ("name",), {"postgresql_using": "gin", "ops": "gin_trgm_ops"}),
    ],
}

#: Columns of the gazetteer that are not layer fields: the search keys its trigger keeps (migration 0002).
SEARCH_KEY_COLUMNS = ("name_short", "py_key", "py_short_key", "py_initials", "py_alt_key", "py_alt_short_key",
                      "py_alt_initials")
SEARCH_KEY_LISTS = ("typo_keys", "py_typo_keys")


#: Column comments the migrations set.
_COMMENTS = {("place_names", "pinyin_manual"): "Hanyu Pinyin set by hand by the place-name office (多音字); wins "
             "over the generated spelling"}


def _column(layer: Layer, spec: Field) -> sa.Column:
    """A field's column: NOT NULL when the field is required, has a default or is computed (as in 0001); a
    reference enforced by a foreign key gets it."""
    kind = _STORAGE[spec.storage]() if spec.storage else _TYPES[spec.type]()
    ref = spec.references
    keys = [sa.ForeignKey(f"{LAYERS[ref.layer].table}.{ref.field}", ondelete=ref.on_delete, onupdate=ref.on_update)
            ] if ref is not None and ref.foreign_key else []
    # unique among current features: a plain UNIQUE constraint unless the layer keeps versions (an index above)
    return sa.Column(spec.name, kind, *keys,
                     nullable=not (spec.required or spec.default is not None or spec.computed),
                     unique=spec.unique and layer.validity is None, comment=_COMMENTS.get((layer.table, spec.name)))


def _layer_table(layer: Layer) -> sa.Table:
    columns = [sa.Column("id", sa.BigInteger, primary_key=True),
               *(_column(layer, spec) for spec in layer.fields),
               sa.Column("geom", Geometry(layer.geometry_type.upper(), srid=STORAGE_SRID, spatial_index=False),
                         nullable=False),
               # bumped by a trigger on every update (migration 0004): the ETag's version
               sa.Column("version", sa.Integer, nullable=False)]
    if layer is GAZETTEER:
        columns += [sa.Column(name, sa.Text) for name in SEARCH_KEY_COLUMNS]
        columns += [sa.Column(name, pg.ARRAY(sa.Text), nullable=False) for name in SEARCH_KEY_LISTS]
    table = sa.Table(layer.table, metadata, *columns)
    sa.Index(f"{layer.table}_geom", table.c.geom, postgresql_using="gist")
    for name, names, options in _INDEXES.get(layer.table, []):
        options = dict(options)
        ops = options.pop("ops", None)
        if ops:
            options["postgresql_ops"] = dict.fromkeys(names, ops)
        if "postgresql_where" in options:
            options["postgresql_where"] = sa.text(options["postgresql_where"])
        sa.Index(name, *(table.c[n] for n in names), **options)
    return table


#: The table of each layer, by layer id.
LAYER_TABLES: dict[str, sa.Table] = {layer.id: _layer_table(layer) for layer in LAYERS.values()}


def layer_table(layer: Layer) -> sa.Table:
    """The table of ``layer``."""
    return LAYER_TABLES[layer.id]


# -- the service's own tables (migrations 0001-0004) --------------------------------------------------------------

marker_inspections = sa.Table(
    "marker_inspections", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("marker_id", sa.BigInteger, sa.ForeignKey("boundary_markers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("inspected_on", sa.Date, nullable=False),
    sa.Column("inspector", sa.Text, nullable=False),
    sa.Column("condition", sa.Text, nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("recorded_at", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Index("marker_inspections_marker", "marker_id", "inspected_on"),
)

pinyin_readings = sa.Table(
    "pinyin_readings", metadata,
    sa.Column("ch", sa.Text, primary_key=True),
    sa.Column("readings", sa.Text, nullable=False),
)

place_name_events = sa.Table(
    "place_name_events", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("place_name_id", sa.BigInteger, sa.ForeignKey("place_names.id", ondelete="CASCADE"), nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("changed_at", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column("changed_by", sa.Text),
    sa.Column("note", sa.Text),
    sa.Column("old_values", pg.JSONB, nullable=False),
    sa.Column("new_values", pg.JSONB, nullable=False),
    sa.Index("place_name_events_place", "place_name_id", "changed_at"),
)

data_versions = sa.Table(
    "data_versions", metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("changed_at", sa.TIMESTAMP(timezone=True), nullable=False),
)

network_nodes = sa.Table(
    "network_nodes", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("component", sa.BigInteger),
    # no SRID in the type: the nodes are in the measure CRS, which network_state records
    sa.Column("geom", Geometry("POINT", spatial_index=False), nullable=False),
)  # no index but the key: the service does not read the nodes (revision 0012)

network_edges = sa.Table(
    "network_edges", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("road_id", sa.BigInteger, nullable=False),
    sa.Column("road_class", sa.Text, nullable=False),
    sa.Column("is_bridge", sa.Boolean, nullable=False),
    sa.Column("source", sa.BigInteger),
    sa.Column("target", sa.BigInteger),
    sa.Column("length_m", pg.DOUBLE_PRECISION, nullable=False),
    sa.Column("cost_walk_s", pg.DOUBLE_PRECISION, nullable=False),
    sa.Column("cost_cycle_s", pg.DOUBLE_PRECISION, nullable=False),
    sa.Column("cost_drive_s", pg.DOUBLE_PRECISION, nullable=False),
    sa.Column("geom", Geometry("LINESTRING", spatial_index=False), nullable=False),
    # read whole or by geometry: no index by source or target, which every build would pay for (revision 0012)
    sa.Index("network_edges_geom", "geom", postgresql_using="gist"),
)

network_state = sa.Table(
    "network_state", metadata,
    sa.Column("id", sa.Boolean, primary_key=True),
    sa.Column("instance_id", pg.UUID, nullable=False),
    sa.Column("roads_version", sa.BigInteger),
    sa.Column("measure_srid", sa.Integer),
    sa.Column("speeds", pg.JSONB),
    sa.Column("edges", sa.Integer),
    sa.Column("nodes", sa.Integer),
    sa.Column("components", sa.Integer),
    sa.Column("built_at", sa.TIMESTAMP(timezone=True)),
    sa.Column("build_seconds", pg.DOUBLE_PRECISION),
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("token_hash", sa.CHAR(64), nullable=False, unique=True),
    sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column("expires_at", sa.TIMESTAMP(timezone=True)),
    sa.Column("revoked_at", sa.TIMESTAMP(timezone=True)),
    sa.Column("last_used_at", sa.TIMESTAMP(timezone=True)),
    sa.Column("if_match_required", sa.Boolean, nullable=False, server_default=sa.true()),
)

#: Each token's write allowance (a token bucket, see gis_service/api/ratelimit.py), shared by every worker and host.
write_allowance = sa.Table(
    "write_allowance", metadata,
    sa.Column("token_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("writes_left", pg.DOUBLE_PRECISION, nullable=False),
    sa.Column("counted_at", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column("allowed", sa.Boolean, nullable=False),
)

audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("changed_at", sa.TIMESTAMP(timezone=True), nullable=False),
    sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id")),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("layer", sa.Text, nullable=False),
    sa.Column("feature_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("version", sa.Integer),
    sa.Column("before", pg.JSONB),
    sa.Column("after", pg.JSONB),
    sa.Column("request_id", sa.Text),
    sa.Column("last_write_wins", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("audit_log_feature", "layer", "feature_id", "id"),
)
