"""``gis-service db backup`` and ``db restore``: a round trip gives back every layer bit for bit, and a bad file is
refused without touching the database it was meant to replace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gis_service.cli import app
from gis_service.db import backup, migrate
from gis_service.db.engine import create_db_engine
from gis_service.errors import BackupFileError
from gis_service.layers import LAYERS

from .helpers import REPO, drop_database


@pytest.fixture(scope="module")
def demo_backup(engine: sa.Engine, database_url: str, backup_key: bytes,
                tmp_path_factory: pytest.TempPathFactory) -> backup.BackupResult:
    """A backup of the test database, which holds the demo county."""
    return backup.backup(database_url, tmp_path_factory.mktemp("backup") / "demo.backup", key=backup_key)


def _checksums(url: str) -> dict[str, backup.TableChecksum]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            return backup.checksums(conn)
    finally:
        engine.dispose()


def _summary_rows(output: str) -> dict[str, str]:
    """Rows per table, as the summary printed by backup and restore gives them."""
    return {line.split()[0]: line.split()[1] for line in output.splitlines() if len(line.split()) == 4}


def _databases_named_like(engine: sa.Engine, prefix: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)"),
                                {"p": prefix}).scalars())


def test_a_backup_restored_into_another_database_gives_back_every_layer_identical(
        demo_backup: backup.BackupResult, engine: sa.Engine, scratch_url: str, admin_url: str) -> None:
    with engine.connect() as conn:
        source = backup.checksums(conn)
    assert demo_backup.checksums == source  # the summary printed with a backup is the data in it
    assert set(LAYERS) <= set(source) and source["roads"].rows > 10_000 and source["marker_inspections"].rows > 0

    result = backup.restore(scratch_url, demo_backup.archive, admin_url=admin_url, keep_previous=False)

    restored = _checksums(scratch_url)
    for layer_id in LAYERS:
        assert restored[layer_id].rows == source[layer_id].rows, layer_id
        assert restored[layer_id].geometry_md5 == source[layer_id].geometry_md5, layer_id
    assert restored == source  # every value of every row too, and the inspections, history, audit trail, tokens
    assert result.checksums == restored and result.previous is None and result.revision == migrate.head_revision()
    scratch_name = make_url(scratch_url).database
    assert _databases_named_like(engine, scratch_name) == {scratch_name}  # no copy left behind

    restored_engine = create_db_engine(scratch_url)
    try:  # the restored database works as the original: versions, checks and references are enforced
        with restored_engine.begin() as conn:
            station_id, version = conn.execute(sa.text("SELECT id, version FROM elder_care ORDER BY id LIMIT 1")).one()
            assert conn.execute(sa.text("UPDATE elder_care SET beds = beds + 1 WHERE id = :id RETURNING version"),
                                {"id": station_id}).scalar_one() == version + 1
        with pytest.raises(sa.exc.DBAPIError, match="division"), restored_engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO settlements (name, village_code, households, geom) VALUES "
                                 "('无此村', '500241999999', 1, ST_SetSRID(ST_MakePoint(108.99, 28.45), 4490))"))
    finally:
        restored_engine.dispose()


def test_restoring_over_live_data_keeps_the_replaced_database_and_gives_fresh_data_versions(
        demo_backup: backup.BackupResult, admin_url: str, small_county: str) -> None:
    live = create_db_engine(small_county)
    with live.begin() as conn:  # the live database has handed out many data versions since the backup
        conn.execute(sa.text("SELECT setval('data_version_seq', 100000)"))
        instance = conn.execute(sa.text("SELECT instance_id FROM network_state")).scalar_one()
    idle = live.connect()
    idle.execute(sa.text("SELECT 1"))

    result = backup.restore(small_county, demo_backup.archive, admin_url=admin_url, keep_previous=True)
    try:
        assert _checksums(small_county) == demo_backup.checksums
        with pytest.raises(sa.exc.OperationalError):  # the swap closed the connections to the replaced database
            idle.execute(sa.text("SELECT 1"))
        idle.invalidate()
        with live.connect() as conn:  # the pool reconnects, to the restored data
            assert conn.execute(sa.text("SELECT count(*) FROM roads")).scalar_one() == \
                demo_backup.checksums["roads"].rows
            versions = conn.execute(sa.text("SELECT table_name, version FROM data_versions")).all()
            assert versions and all(version > 100000 for _, version in versions)  # no cache can mix them up
            state = conn.execute(sa.text("SELECT instance_id, roads_version FROM network_state")).one()
            assert state.instance_id != instance
        previous_url = make_url(small_county).set(database=result.previous).render_as_string(hide_password=False)
        kept = _checksums(previous_url)  # the data from before the restore, kept for undoing it
        assert kept["roads"].rows == 0 and kept["elder_care"].rows == demo_backup.checksums["elder_care"].rows
    finally:
        live.dispose()
        drop_database(admin_url, result.previous)


def _damaged_files(good: Path, folder: Path, database_url: str) -> dict[str, Path]:
    """Files a restore must refuse: missing, not an archive, cut short, with damaged data, another database's."""
    content = good.read_bytes()
    files = {"missing": folder / "missing.backup"}
    files["not an archive"] = folder / "photo.jpg"
    files["not an archive"].write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(50_000))
    files["cut short"] = folder / "cut.backup"
    files["cut short"].write_bytes(content[: len(content) * 2 // 3])
    damaged = bytearray(content)
    for offset in range(len(content) // 2, len(content) // 2 + 4096, 7):
        damaged[offset] ^= 0x5A
    files["damaged data"] = folder / "damaged.backup"
    files["damaged data"].write_bytes(bytes(damaged))
    files["another database's"] = other = folder / "postgres.backup"
    conninfo, env = backup.libpq_params(database_url, "postgres")
    subprocess.run([str(backup.pg_tool("pg_dump")), "--format=custom", f"--file={other}", f"--dbname={conninfo}"],
                   env=env, check=True)
    return files


def test_a_missing_or_damaged_file_is_refused_and_the_database_is_left_as_it_was(
        demo_backup: backup.BackupResult, engine: sa.Engine, database_url: str, admin_url: str, small_county: str,
        tmp_path: Path) -> None:
    before = _checksums(small_county)
    name = make_url(small_county).database
    refused = {}
    for what, path in _damaged_files(demo_backup.archive.path, tmp_path, database_url).items():
        with pytest.raises(BackupFileError) as error:  # without a manifest: what pg_restore and the loading find
            backup.restore(small_county, backup.open_archive(path, without_manifest=True), admin_url=admin_url,
                           keep_previous=False)
        refused[what] = str(error.value)
        assert _checksums(small_county) == before, what
        assert _databases_named_like(engine, name) == {name}, what  # the half-restored copy is gone
    assert "does not exist" in refused["missing"]
    assert "not a backup that pg_restore can read" in refused["not an archive"]
    assert "could not be restored" in refused["cut short"] and "Nothing was changed" in refused["cut short"]
    assert "Nothing was changed" in refused["damaged data"]
    assert "not a gis-service backup" in refused["another database's"]


def test_a_backup_of_a_newer_schema_is_refused(small_county: str, admin_url: str, backup_key: bytes,
                                               tmp_path: Path) -> None:
    future = create_db_engine(small_county)
    with future.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    future.dispose()
    newer = backup.backup(small_county, tmp_path / "newer.backup", key=backup_key)
    with pytest.raises(BackupFileError, match=r"written by a newer gis-service \(schema 0099_from_the_future\)"):
        backup.restore(small_county, newer.archive, admin_url=admin_url)
    assert _checksums(small_county) == newer.checksums


def test_the_commands_back_up_restore_and_refuse_a_bad_file_with_exit_code_2(
        small_county: str, admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "county.backup"
    monkeypatch.setenv("GIS_DATABASE_URL", small_county)
    monkeypatch.setenv("GIS_ADMIN_DATABASE_URL", admin_url)
    monkeypatch.setenv("GIS_DATA_DIR", str(tmp_path / "data"))  # where the signing key is made
    made = CliRunner().invoke(app, ["db", "backup", str(file), "--verify"])
    assert made.exit_code == 0, made.output
    counts = {table: f"{sums.rows:,}" for table, sums in _checksums(small_county).items()}
    assert _summary_rows(made.output) == counts and counts["admin_divisions"] == "299"
    assert "verified: it restores to the same data" in made.output

    live = create_db_engine(small_county)
    with live.begin() as conn:  # a mistake, which the backup undoes
        conn.execute(sa.text("DELETE FROM elder_care"))
    live.dispose()
    restored = CliRunner().invoke(app, ["db", "restore", str(file), "--no-keep-previous"])
    assert restored.exit_code == 0, restored.output
    assert _summary_rows(restored.output) == counts
    assert {table: f"{sums.rows:,}" for table, sums in _checksums(small_county).items()} == counts

    file.write_bytes(file.read_bytes()[:5000])
    refused = subprocess.run([sys.executable, "-m", "gis_service.cli", "db", "restore", str(file)],
                             env={**os.environ, "GIS_DATABASE_URL": small_county}, cwd=REPO, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "county.backup is not the file its manifest describes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert {table: f"{sums.rows:,}" for table, sums in _checksums(small_county).items()} == counts
