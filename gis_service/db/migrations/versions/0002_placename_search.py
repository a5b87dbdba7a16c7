"""Search keys on place names, the pinyin override and the change log.

Revision ID: 0002_placename_search
Revises: 0001_layers
Create Date: 2026-11-29

The database keeps every search key itself, in a BEFORE INSERT OR UPDATE trigger, so no write path
(COPY of an import, the demo loader, a rename) can leave a key stale:

- ``name_short``: the name without its administrative generic (石堤镇 -> 石堤, 东风社区 -> 东风);
- ``py_key`` / ``py_short_key`` / ``py_initials``: toneless pinyin of the name (and of the short name) with
  the spaces removed and ü folded to u ("shidizhen", "shidi", "sdz"). The syllables come from
  ``pinyin_manual`` when the office set one, else from the ``pinyin`` spelling, else from the most
  common reading of each character (table ``pinyin_readings``, made from pypinyin's dictionary);
- ``py_alt_key`` / ``py_alt_initials``: the other reading when a manual or stored spelling differs from the
  dictionary one (多音字: 朝阳 is "chaoyang" and "zhaoyang"), so both are searched;
- ``typo_keys`` / ``py_typo_keys``: every variant of the name (and of its pinyin key) with one character
  removed, for one-edit matching in an index (symmetric deletion: a wrong, missing or extra character).

``place_name_events`` records every change to a place name (what, who from the ``gis.user`` setting, when).
The key functions mirror :mod:`gis_service.search.keys` (a test checks that they agree). The DDL is frozen
here: a later change to the rules needs a new revision.
"""

from alembic import op

revision = "0002_placename_search"
down_revision = "0001_layers"
branch_labels = None
depends_on = None

# Readings that place names use where pypinyin's first reading is another one (as in gis_service.pinyin).
PREFERRED_READINGS = {"长": "chang", "都": "du", "堡": "bao", "朝": "chao", "覃": "qin", "曾": "zeng",
                      "单": "shan", "解": "xie", "乐": "yue", "石": "shi", "重": "chong", "行": "hang"}

TONE_FROM = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüêńňǹḿv"
TONE_TO = "aaaaeeeeiiiioooouuuuuuuuuennnmu"

UPGRADE_SQL = r"""
CREATE TABLE pinyin_readings (
    ch       text PRIMARY KEY CHECK (char_length(ch) = 1),
    readings text NOT NULL  -- toneless, ü folded to u, comma-separated, the preferred reading first
);

ALTER TABLE place_names
    ADD COLUMN pinyin_manual     text CHECK (length(pinyin_manual) BETWEEN 1 AND 200),
    ADD COLUMN name_short        text,
    ADD COLUMN py_key            text,
    ADD COLUMN py_short_key      text,
    ADD COLUMN py_initials       text,
    ADD COLUMN py_alt_key        text,
    ADD COLUMN py_alt_short_key  text,
    ADD COLUMN py_alt_initials   text,
    ADD COLUMN typo_keys         text[] NOT NULL DEFAULT '{}',
    ADD COLUMN py_typo_keys      text[] NOT NULL DEFAULT '{}';

COMMENT ON COLUMN place_names.pinyin_manual IS
    'Hanyu Pinyin set by hand by the place-name office (多音字); wins over the generated spelling';

-- Toneless letters and digits of a pinyin spelling, ü folded to u: 'Lóngfèngbà Zhèn' -> 'longfengbazhen'.
CREATE FUNCTION pn_fold_pinyin(spelling text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT regexp_replace(translate(lower(spelling), '{tone_from}', '{tone_to}'), '[^a-z0-9]', '', 'g')
$$;

-- The name without its administrative generic, when at least two characters remain.
CREATE FUNCTION pn_short_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN char_length(s) >= 2 THEN s ELSE name END
    FROM (SELECT regexp_replace(name,
        '(土家族苗族自治县|自治县|居民委员会|村民委员会|街道办事处|街道|社区|县|镇|乡|村)$', '') AS s) AS t
$$;

-- Every variant of s with one character removed, keeping variants of at least min_len characters.
CREATE FUNCTION pn_deletes(s text, min_len integer) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT left(s, i - 1) || substr(s, i + 1)), '{}')
    FROM generate_series(1, char_length(s)) AS i
    WHERE char_length(s) - 1 >= min_len
$$;

-- One reading per character of a name, chosen so that together they spell key (NULL if none do).
-- readings[i] is the comma-separated list of candidate readings of the i-th character.
CREATE FUNCTION pn_align(readings text[], key text, i integer, pos integer) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    candidate text;
    rest text[];
BEGIN
    IF i > coalesce(array_length(readings, 1), 0) THEN
        RETURN CASE WHEN pos > char_length(key) THEN '{}'::text[] END;
    END IF;
    IF readings[i] = '' THEN  -- a character without a reading spells nothing
        rest := pn_align(readings, key, i + 1, pos);
        RETURN CASE WHEN rest IS NOT NULL THEN array_prepend(''::text, rest) END;
    END IF;
    FOREACH candidate IN ARRAY string_to_array(readings[i], ',') LOOP
        IF substr(key, pos, char_length(candidate)) = candidate THEN
            rest := pn_align(readings, key, i + 1, pos + char_length(candidate));
            IF rest IS NOT NULL THEN
                RETURN array_prepend(candidate, rest);
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- The candidate readings of each character of name (comma-separated, preferred first). Latin letters and
-- digits stand for themselves; other characters (punctuation, unknown) have the empty reading.
CREATE FUNCTION pn_readings(name text) RETURNS text[]
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT ARRAY(
        SELECT CASE WHEN c ~ '^[A-Za-z0-9]$' THEN lower(c)
                    ELSE coalesce((SELECT r.readings FROM pinyin_readings r WHERE r.ch = c), '') END
        FROM unnest(regexp_split_to_array(name, '')) WITH ORDINALITY AS t(c, ord) ORDER BY ord)
$$;

-- One toneless syllable per character: the readings that spell key (a folded spelling) when there are
-- such, else the preferred reading of each character.
CREATE FUNCTION pn_pick(readings text[], key text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    picked text[] := '{}';
    pos integer := 1;
    candidate text;
    found boolean;
    r text;
BEGIN
    IF key IS NOT NULL AND key <> '' THEN
        -- greedy first (each character's first reading that continues the spelling), then the full search
        FOREACH r IN ARRAY readings LOOP
            found := r = '';
            IF found THEN
                picked := picked || ''::text;
            ELSE
                FOREACH candidate IN ARRAY string_to_array(r, ',') LOOP
                    IF substr(key, pos, char_length(candidate)) = candidate THEN
                        picked := picked || candidate;
                        pos := pos + char_length(candidate);
                        found := true;
                        EXIT;
                    END IF;
                END LOOP;
            END IF;
            EXIT WHEN NOT found;
        END LOOP;
        IF found AND pos > char_length(key) THEN
            RETURN picked;
        END IF;
        picked := pn_align(readings, key, 1, 1);
        IF picked IS NOT NULL THEN
            RETURN picked;
        END IF;
        picked := '{}';
    END IF;
    FOREACH r IN ARRAY readings LOOP
        picked := picked || split_part(r, ',', 1);
    END LOOP;
    RETURN picked;
END $$;

CREATE FUNCTION pn_syllables(name text, spelling text) RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT pn_pick(pn_readings(name), pn_fold_pinyin(spelling))
$$;

CREATE FUNCTION pn_initials(syllables text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    out text := '';
    s text;
BEGIN
    FOREACH s IN ARRAY syllables LOOP
        out := out || left(s, 1);
    END LOOP;
    RETURN out;
END $$;

CREATE FUNCTION place_names_search_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    readings text[];
    main text[];
    alt text[];
    n_short integer;
BEGIN
    NEW.name_short := pn_short_name(NEW.name);
    readings := pn_readings(NEW.name);
    main := pn_pick(readings, pn_fold_pinyin(coalesce(NEW.pinyin_manual, NEW.pinyin)));
    IF NEW.pinyin_manual IS NOT NULL THEN
        alt := pn_pick(readings, pn_fold_pinyin(NEW.pinyin));
    ELSIF NEW.pinyin IS NOT NULL THEN
        alt := pn_pick(readings, NULL);
    ELSE
        alt := main;
    END IF;
    n_short := char_length(NEW.name_short);
    NEW.py_key := array_to_string(main, '');
    NEW.py_short_key := array_to_string(main[1:n_short], '');
    NEW.py_initials := pn_initials(main);
    NEW.py_alt_key := nullif(array_to_string(alt, ''), NEW.py_key);
    NEW.py_alt_short_key := nullif(array_to_string(alt[1:n_short], ''), NEW.py_short_key);
    NEW.py_alt_initials := nullif(pn_initials(alt), NEW.py_initials);
    NEW.typo_keys := pn_deletes(NEW.name, 2) || pn_deletes(NEW.name_short, 2);
    NEW.py_typo_keys := pn_deletes(NEW.py_key, 4) || pn_deletes(NEW.py_short_key, 4);
    RETURN NEW;
END $$;

CREATE TRIGGER place_names_search_keys
    BEFORE INSERT OR UPDATE OF name, pinyin, pinyin_manual ON place_names
    FOR EACH ROW EXECUTE FUNCTION place_names_search_keys();

CREATE INDEX place_names_name_prefix ON place_names (name text_pattern_ops);
CREATE INDEX place_names_short_prefix ON place_names (name_short text_pattern_ops);
CREATE INDEX place_names_py_key ON place_names (py_key text_pattern_ops);
CREATE INDEX place_names_py_short_key ON place_names (py_short_key text_pattern_ops);
CREATE INDEX place_names_py_initials ON place_names (py_initials text_pattern_ops);
CREATE INDEX place_names_py_alt_key ON place_names (py_alt_key text_pattern_ops) WHERE py_alt_key IS NOT NULL;
CREATE INDEX place_names_py_alt_short_key ON place_names (py_alt_short_key text_pattern_ops)
    WHERE py_alt_short_key IS NOT NULL;
CREATE INDEX place_names_py_alt_initials ON place_names (py_alt_initials text_pattern_ops)
    WHERE py_alt_initials IS NOT NULL;
CREATE INDEX place_names_admin_name_prefix ON place_names (name text_pattern_ops)
    WHERE category = 'administrative';
CREATE INDEX place_names_admin_py_key ON place_names (py_key text_pattern_ops) WHERE category = 'administrative';
CREATE INDEX place_names_typo_keys ON place_names USING gin (typo_keys);
CREATE INDEX place_names_py_typo_keys ON place_names USING gin (py_typo_keys);
CREATE INDEX place_names_py_key_trgm ON place_names USING gin (py_key gin_trgm_ops);
CREATE INDEX place_names_name_trgm ON place_names USING gin (name gin_trgm_ops);
CREATE INDEX place_names_successor ON place_names (successor_id) WHERE successor_id IS NOT NULL;
CREATE INDEX place_names_division_prefix ON place_names (division_code varchar_pattern_ops);

-- What changed in a place name, who changed it (the setting gis.user of the writing transaction) and when.
CREATE TABLE place_name_events (
    id             bigserial PRIMARY KEY,
    place_name_id  bigint NOT NULL REFERENCES place_names (id) ON DELETE CASCADE,
    action         text NOT NULL CHECK (action IN ('created', 'updated', 'renamed', 'cancelled', 'superseded')),
    changed_at     timestamptz NOT NULL DEFAULT now(),
    changed_by     text,
    note           text CHECK (length(note) <= 2000),
    old_values     jsonb NOT NULL DEFAULT '{}',
    new_values     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX place_name_events_place ON place_name_events (place_name_id, changed_at);

""".replace("{tone_from}", TONE_FROM).replace("{tone_to}", TONE_TO)

# Made after the keys of existing rows are filled in, so that the fill-in is not logged as a change.
CHANGE_LOG_SQL = r"""
-- Every update of a recorded field is logged. Bulk loads (INSERT/COPY) are not: a record's creation is
-- logged by the write path that creates it, with its reason.
CREATE FUNCTION place_names_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := to_jsonb(OLD) - 'geom';
    new_row jsonb := to_jsonb(NEW) - 'geom';
    old_values jsonb := '{}';
    new_values jsonb := '{}';
    field text;
    action text := 'updated';
BEGIN
    FOREACH field IN ARRAY ARRAY['name', 'pinyin', 'pinyin_manual', 'category', 'division_code', 'meaning',
                                 'origin', 'history', 'status', 'successor_id', 'heritage_listed'] LOOP
        IF (old_row -> field) IS DISTINCT FROM (new_row -> field) THEN
            old_values := old_values || jsonb_build_object(field, old_row -> field);
            new_values := new_values || jsonb_build_object(field, new_row -> field);
        END IF;
    END LOOP;
    IF NOT ST_Equals(OLD.geom, NEW.geom) THEN
        old_values := old_values || jsonb_build_object('geom', ST_AsText(OLD.geom));
        new_values := new_values || jsonb_build_object('geom', ST_AsText(NEW.geom));
    END IF;
    IF old_values = '{}' THEN
        RETURN NEW;
    END IF;
    IF new_values ? 'name' THEN
        action := 'renamed';
    ELSIF NEW.status = 'cancelled' AND OLD.status <> 'cancelled' THEN
        action := 'cancelled';
    ELSIF NEW.status = 'historical' AND OLD.status = 'current' THEN
        action := 'superseded';
    END IF;
    INSERT INTO place_name_events (place_name_id, action, changed_by, note, old_values, new_values)
    VALUES (NEW.id, action, nullif(current_setting('gis.user', true), ''),
            nullif(current_setting('gis.change_note', true), ''), old_values, new_values);
    RETURN NEW;
END $$;

CREATE TRIGGER place_names_log_change
    AFTER UPDATE ON place_names
    FOR EACH ROW EXECUTE FUNCTION place_names_log_change();
"""

DOWNGRADE_SQL = """
DROP TRIGGER IF EXISTS place_names_log_change ON place_names;
DROP FUNCTION IF EXISTS place_names_log_change();
DROP TABLE IF EXISTS place_name_events;
DROP TRIGGER IF EXISTS place_names_search_keys ON place_names;
DROP FUNCTION IF EXISTS place_names_search_keys();
-- indexes on the added columns go with them; these are on columns of 0001
DROP INDEX IF EXISTS place_names_name_prefix, place_names_admin_name_prefix, place_names_name_trgm,
    place_names_successor, place_names_division_prefix;
ALTER TABLE place_names
    DROP COLUMN IF EXISTS pinyin_manual, DROP COLUMN IF EXISTS name_short, DROP COLUMN IF EXISTS py_key,
    DROP COLUMN IF EXISTS py_short_key, DROP COLUMN IF EXISTS py_initials, DROP COLUMN IF EXISTS py_alt_key,
    DROP COLUMN IF EXISTS py_alt_short_key, DROP COLUMN IF EXISTS py_alt_initials,
    DROP COLUMN IF EXISTS typo_keys, DROP COLUMN IF EXISTS py_typo_keys;
DROP FUNCTION IF EXISTS pn_initials(text[]);
DROP FUNCTION IF EXISTS pn_syllables(text, text);
DROP FUNCTION IF EXISTS pn_pick(text[], text);
DROP FUNCTION IF EXISTS pn_readings(text);
DROP FUNCTION IF EXISTS pn_align(text[], text, integer, integer);
DROP FUNCTION IF EXISTS pn_deletes(text, integer);
DROP FUNCTION IF EXISTS pn_short_name(text);
DROP FUNCTION IF EXISTS pn_fold_pinyin(text);
DROP TABLE IF EXISTS pinyin_readings;
"""


def _fold(syllable: str) -> str:
    table = str.maketrans(TONE_FROM, TONE_TO)
    return "".join(c for c in syllable.lower().translate(table) if c.isascii() and c.isalnum())


def pinyin_readings() -> tuple[list[str], list[str]]:
    """(characters, comma-separated toneless readings) for every character in pypinyin's dictionary."""
    from pypinyin.pinyin_dict import pinyin_dict

    chars, readings = [], []
    for code, spellings in sorted(pinyin_dict.items()):
        if code > 0x10FFFF:
            continue
        char = chr(code)
        folded: list[str] = []
        for spelling in spellings.split(","):
            reading = _fold(spelling)
            if reading and reading not in folded:
                folded.append(reading)
        preferred = PREFERRED_READINGS.get(char)
        if preferred:
            folded = [preferred] + [r for r in folded if r != preferred]
        if folded:
            chars.append(char)
            readings.append(",".join(folded))
    return chars, readings


def upgrade() -> None:
    op.execute(UPGRADE_SQL)
    chars, readings = pinyin_readings()
    bind = op.get_bind()
    import sqlalchemy as sa

    bind.execute(sa.text("INSERT INTO pinyin_readings (ch, readings) "
                         "SELECT * FROM unnest(CAST(:chars AS text[]), CAST(:readings AS text[]))"),
                 {"chars": chars, "readings": readings})
    # Rows already present get their keys now.
    op.execute("UPDATE place_names SET name = name")
    op.execute(CHANGE_LOG_SQL)


def downgrade() -> None:
    op.execute(DOWNGRADE_SQL)
