"""Every layer the bureau keeps, typed, in EPSG:4490.

Revision ID: 0001_layers
Revises:
Create Date: 2026-11-29

The DDL is written out here rather than generated from the layer registry: a
migration is a frozen record of what the schema was at this revision.
"""

from alembic import op

revision = "0001_layers"
down_revision = None
branch_labels = None
depends_on = None

EXTENSIONS = ("postgis", "pgrouting", "pg_trgm", "fuzzystrmatch")

# (table, geometry type) for the geometry CHECKs and GiST indexes below.
GEOMETRY_TABLES = (
    ("admin_divisions", "MULTIPOLYGON"),
    ("boundary_lines", "MULTILINESTRING"),
    ("boundary_markers", "POINT"),
    ("roads", "LINESTRING"),
    ("place_names", "POINT"),
    ("settlements", "POINT"),
    ("cemeteries", "POINT"),
    ("elder_care", "POINT"),
    ("community_centres", "POINT"),
)

# Tables whose column holds the code of a current administrative division.
DIVISION_REFERENCES = (
    ("admin_divisions", "parent_code"),
    ("settlements", "village_code"),
    ("place_names", "division_code"),
    ("cemeteries", "division_code"),
    ("elder_care", "division_code"),
    ("community_centres", "division_code"),
)

UPGRADE_SQL = r"""
CREATE TABLE admin_divisions (
    id           bigserial PRIMARY KEY,
    code         varchar(12) NOT NULL CHECK (code ~ '^[0-9]{12}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    short_name   text CHECK (length(short_name) BETWEEN 1 AND 100),
    level        text NOT NULL CHECK (level IN ('county', 'township', 'village')),
    kind         text NOT NULL CHECK (kind IN ('县', '街道', '镇', '乡', '社区', '村')),
    parent_code  varchar(12) CHECK (parent_code ~ '^[0-9]{12}$'),
    households   integer CHECK (households >= 0),
    population   integer CHECK (population >= 0),
    urban_rural  text CHECK (urban_rural IN ('urban', 'rural')),
    valid_from   date NOT NULL DEFAULT DATE '1949-10-01',
    valid_to     date CHECK (valid_to IS NULL OR valid_to > valid_from),
    data_source  text,
    geom         geometry(MultiPolygon, 4490) NOT NULL,
    CHECK ((level = 'county') = (kind = '县')),
    CHECK ((level = 'township') = (kind IN ('街道', '镇', '乡'))),
    CHECK ((level = 'village') = (kind IN ('社区', '村'))),
    CHECK ((level = 'county') = (parent_code IS NULL))
);
-- A code names one current division; earlier versions keep their own rows.
CREATE UNIQUE INDEX admin_divisions_current_code ON admin_divisions (code) WHERE valid_to IS NULL;
CREATE UNIQUE INDEX admin_divisions_code_version ON admin_divisions (code, valid_from);
CREATE INDEX admin_divisions_parent ON admin_divisions (parent_code);

CREATE TABLE boundary_lines (
    id            bigserial PRIMARY KEY,
    code          text NOT NULL UNIQUE CHECK (code ~ '^[0-9]{6,12}-[0-9]{6,12}$'),
    name          text NOT NULL,
    level         text NOT NULL CHECK (level IN ('county', 'township')),
    left_code     varchar(12) NOT NULL CHECK (left_code ~ '^[0-9]{6,12}$'),
    left_name     text NOT NULL,
    right_code    varchar(12) NOT NULL CHECK (right_code ~ '^[0-9]{6,12}$'),
    right_name    text NOT NULL,
    length_m      double precision NOT NULL CHECK (length_m > 0),
    status        text NOT NULL DEFAULT 'agreed' CHECK (status IN ('agreed', 'disputed', 'under_survey')),
    last_inspected date,
    data_source   text,
    geom          geometry(MultiLineString, 4490) NOT NULL,
    CHECK (left_code <> right_code)
);
CREATE INDEX boundary_lines_left ON boundary_lines (left_code);
CREATE INDEX boundary_lines_right ON boundary_lines (right_code);

CREATE TABLE boundary_markers (
    id             bigserial PRIMARY KEY,
    number         text NOT NULL UNIQUE,
    marker_type    char(1) NOT NULL CHECK (marker_type IN ('Q', 'A', 'B', 'C', 'D', 'E')),
    line_code      text NOT NULL REFERENCES boundary_lines (code) ON UPDATE CASCADE,
    material       text CHECK (material IN ('granite', 'concrete', 'steel', 'plastic')),
    set_on         date,
    condition      text NOT NULL DEFAULT 'intact'
                   CHECK (condition IN ('intact', 'damaged', 'missing', 'displaced')),
    last_inspected date,
    data_source    text,
    geom           geometry(Point, 4490) NOT NULL,
    -- the number ends in the type letter: <line code>-<3-digit sequence><type>
    CHECK (number ~ ('^' || line_code || '-[0-9]{3}' || marker_type || '$'))
);
CREATE INDEX boundary_markers_line ON boundary_markers (line_code);

CREATE TABLE marker_inspections (
    id           bigserial PRIMARY KEY,
    marker_id    bigint NOT NULL REFERENCES boundary_markers (id) ON DELETE CASCADE,
    inspected_on date NOT NULL,
    inspector    text NOT NULL CHECK (length(inspector) BETWEEN 1 AND 100),
    condition    text NOT NULL CHECK (condition IN ('intact', 'damaged', 'missing', 'displaced')),
    notes        text CHECK (length(notes) <= 2000),
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX marker_inspections_marker ON marker_inspections (marker_id, inspected_on);

CREATE TABLE roads (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    pinyin        text,
    road_class    text NOT NULL CHECK (road_class IN ('urban_arterial', 'urban_secondary', 'urban_branch',
                                                     'county', 'township', 'village', 'path')),
    is_bridge     boolean NOT NULL DEFAULT false,
    width_m       real CHECK (width_m > 0 AND width_m < 100),
    length_m      double precision NOT NULL CHECK (length_m > 0),
    named_on      date,
    approval_no   text,
    former_names  text[] NOT NULL DEFAULT '{}',
    data_source   text,
    geom          geometry(LineString, 4490) NOT NULL
);
CREATE INDEX roads_name ON roads (name);

CREATE TABLE place_names (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    pinyin          text,
    category        text NOT NULL CHECK (category IN ('administrative', 'settlement', 'road', 'natural',
                                                      'memorial', 'facility')),
    division_code   varchar(12) CHECK (division_code ~ '^[0-9]{12}$'),
    meaning         text,
    origin          text,
    history         text,
    status          text NOT NULL DEFAULT 'current' CHECK (status IN ('current', 'historical', 'cancelled')),
    successor_id    bigint REFERENCES place_names (id) ON DELETE SET NULL,
    heritage_listed boolean NOT NULL DEFAULT false,
    data_source     text,
    geom            geometry(Point, 4490) NOT NULL,
    CHECK (successor_id IS NULL OR status <> 'current'),
    CHECK (successor_id IS NULL OR successor_id <> id)
);
CREATE INDEX place_names_name ON place_names (name);
CREATE INDEX place_names_division ON place_names (division_code);

CREATE TABLE settlements (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    village_code  varchar(12) NOT NULL CHECK (village_code ~ '^[0-9]{12}$'),
    households    integer NOT NULL CHECK (households >= 0),
    population    integer CHECK (population >= 0),
    data_source   text,
    geom          geometry(Point, 4490) NOT NULL
);
CREATE INDEX settlements_village ON settlements (village_code);

CREATE TABLE cemeteries (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind           text NOT NULL CHECK (kind IN ('public_welfare_cemetery', 'burial_point', 'funeral_home',
                                                 'funeral_service_station', 'commercial_cemetery')),
    urban_rural    text NOT NULL CHECK (urban_rural IN ('urban', 'rural')),
    public_welfare boolean NOT NULL DEFAULT true,
    capacity       integer CHECK (capacity >= 0),
    graves_used    integer CHECK (graves_used >= 0),
    status         text NOT NULL DEFAULT 'existing' CHECK (status IN ('existing', 'planned', 'closed')),
    division_code  varchar(12) CHECK (division_code ~ '^[0-9]{12}$'),
    data_source    text,
    geom           geometry(Point, 4490) NOT NULL,
    CHECK (graves_used IS NULL OR capacity IS NULL OR graves_used <= capacity)
);

CREATE TABLE elder_care (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind          text NOT NULL CHECK (kind IN ('welfare_institution', 'township_home', 'community_station',
                                                'rural_happiness_home')),
    beds          integer NOT NULL DEFAULT 0 CHECK (beds >= 0),
    nursing_beds  integer NOT NULL DEFAULT 0 CHECK (nursing_beds >= 0),
    operator      text NOT NULL CHECK (operator IN ('government', 'private', 'public_private')),
    comprehensive boolean NOT NULL DEFAULT false,
    rating        smallint CHECK (rating BETWEEN 0 AND 5),
    status        text NOT NULL DEFAULT 'existing' CHECK (status IN ('existing', 'planned', 'closed')),
    division_code varchar(12) CHECK (division_code ~ '^[0-9]{12}$'),
    data_source   text,
    geom          geometry(Point, 4490) NOT NULL,
    CHECK (nursing_beds <= beds)
);

CREATE TABLE community_centres (
    id                       bigserial PRIMARY KEY,
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    floor_area_m2            double precision NOT NULL CHECK (floor_area_m2 > 0),
    volunteer_point          boolean NOT NULL DEFAULT false,
    minor_protection_station boolean NOT NULL DEFAULT false,
    division_code            varchar(12) NOT NULL CHECK (division_code ~ '^[0-9]{12}$'),
    status                   text NOT NULL DEFAULT 'existing' CHECK (status IN ('existing', 'planned', 'closed')),
    data_source              text,
    geom                     geometry(Point, 4490) NOT NULL
);

-- A reference to an administrative division must name a current one. A plain
-- foreign key cannot point at a partial unique index, so a trigger checks it.
CREATE FUNCTION check_division_reference() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ref text;
BEGIN
    EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) USING NEW INTO ref;
    IF ref IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM admin_divisions WHERE code = ref AND valid_to IS NULL
    ) THEN
        RAISE EXCEPTION USING
            ERRCODE = 'foreign_key_violation',
            MESSAGE = format('%s.%s = %s is not the code of a current administrative division',
                             TG_TABLE_NAME, TG_ARGV[0], ref);
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    for extension in EXTENSIONS:
        op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    op.execute(UPGRADE_SQL)
    for table, geometry_type in GEOMETRY_TABLES:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_geom_valid "
            f"CHECK (ST_IsValid(geom) AND GeometryType(geom) = '{geometry_type}' AND NOT ST_IsEmpty(geom))"
        )
        op.execute(f"CREATE INDEX {table}_geom ON {table} USING gist (geom)")
    for table, column in DIVISION_REFERENCES:
        # Historical divisions may point at historical parents; only current rows are checked.
        condition = "WHEN (NEW.valid_to IS NULL) " if table == "admin_divisions" else ""
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_{column}_exists AFTER INSERT OR UPDATE OF {column} ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW {condition}"
            f"EXECUTE FUNCTION check_division_reference('{column}')"
        )


def downgrade() -> None:
    for table in ("marker_inspections", "boundary_markers", "boundary_lines", "roads", "place_names",
                  "settlements", "cemeteries", "elder_care", "community_centres", "admin_divisions"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS check_division_reference()")
    # Extensions stay: other databases objects (or the next upgrade) may use them.
