"""Generated rollbacks on a real PostgreSQL: apply, roll back, and the catalog is exactly what it was."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bot.demo import load_example_schema
from bot.drafting import PlanDraft, draft_plan
from bot.errors import UserError
from bot.rules import PlanningOnly
from bot.sql.catalog import LiveCatalog, OfflineCatalog
from bot.sql.fingerprint import fingerprint_diff, schema_fingerprint
from bot.sql.model import Rollback
from bot.sql.parse import parse_statements
from bot.sql.rollback import MANUAL, file_rollback, find_rollback, generate_rollback
from tests.conftest import EXAMPLES
from tests.test_examples import EXPECTED, FAILING, MIGRATIONS, apply

BASE = """
CREATE SCHEMA app;
CREATE TABLE app.users (id int PRIMARY KEY, email text NOT NULL, name text DEFAULT 'anon', age int);
CREATE TABLE app.posts (id int PRIMARY KEY, user_id int, title text);
CREATE TABLE app."Mixed Case" ("Weird Col" int);
COMMENT ON TABLE app.users IS 'people';
COMMENT ON COLUMN app.users.email IS 'where we write';
CREATE TABLE app.posts_user_id_fkey_holder (id int);  -- takes no constraint name; constraints are per table
ALTER TABLE app.posts ADD CONSTRAINT posts_title_key_x UNIQUE (title);
CREATE INDEX posts_user_id_idx ON app.posts (id);  -- PostgreSQL must pick posts_user_id_idx1 next
CREATE UNIQUE INDEX users_email_idx ON app.users (email);
CREATE INDEX users_age_idx ON app.users (age) WHERE age > 0;
ALTER TABLE app.posts ADD CONSTRAINT posts_user_later FOREIGN KEY (user_id) REFERENCES app.users NOT VALID;
ALTER TABLE app.users ADD CONSTRAINT users_age_positive CHECK (age > 0) NOT VALID;
CREATE TABLE app.events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE app.events_2026 (id int, at date);
INSERT INTO app.users SELECT i, 'u' || i || '@x', NULL, i FROM generate_series(1, 20) i;
INSERT INTO app.posts SELECT i, i, 't' || i FROM generate_series(1, 20) i;
"""

CASES = {
    "create table, index, view, function, trigger, type, sequence": """
        CREATE TABLE app.tags (id int PRIMARY KEY, post_id int REFERENCES app.posts (id), label text UNIQUE);
        CREATE INDEX tags_label ON app.tags (label);
        CREATE VIEW app.recent AS SELECT id FROM app.posts;
        CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER posts_touch BEFORE UPDATE ON app.posts FOR EACH ROW EXECUTE FUNCTION app.touch();
        CREATE TYPE app.mood AS ENUM ('ok', 'meh');
        CREATE SEQUENCE app.counter;
        CREATE SCHEMA extra;
    """,
    "add columns with inline constraints": """
        ALTER TABLE app.users ADD COLUMN nick text UNIQUE, ADD COLUMN score int CHECK (score > 0);
        ALTER TABLE app.posts ADD COLUMN editor_id int REFERENCES app.users (id);
    """,
    "unnamed constraints and indexes, with a name collision": """
        ALTER TABLE app.posts ADD FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID;
        ALTER TABLE app.users ADD CHECK (age > 0);
        ALTER TABLE app.users ADD UNIQUE (email);
        CREATE INDEX ON app.posts (user_id);
        CREATE TABLE app.nopk (id int);
        ALTER TABLE app.nopk ADD PRIMARY KEY (id);
    """,
    "renames": """
        ALTER TABLE app.users RENAME COLUMN name TO display_name;
        ALTER TABLE app.posts RENAME TO articles;
        ALTER INDEX app.posts_user_id_idx RENAME TO articles_idx;
        ALTER TABLE app.articles RENAME CONSTRAINT posts_title_key_x TO articles_title_key;
    """,
    "not null and defaults from the catalog": """
        ALTER TABLE app.users ALTER COLUMN age SET NOT NULL;
        ALTER TABLE app.users ALTER COLUMN email DROP NOT NULL;
        ALTER TABLE app.users ALTER COLUMN name SET DEFAULT 'someone';
        ALTER TABLE app.users ALTER COLUMN age SET DEFAULT 18;
        ALTER TABLE app.users ALTER COLUMN name DROP DEFAULT;
    """,
    "comments back to what they were": """
        COMMENT ON TABLE app.users IS 'members';
        COMMENT ON COLUMN app.users.email IS NULL;
        COMMENT ON COLUMN app.users.age IS 'years';
    """,
    "quoted identifiers": """
        ALTER TABLE app."Mixed Case" ADD COLUMN "Other Col" text;
        ALTER TABLE app."Mixed Case" RENAME COLUMN "Weird Col" TO "Weirder Col";
        CREATE INDEX "Odd Index" ON app."Mixed Case" ("Other Col");
    """,
    "constraints validated later, settings, transaction": """
        BEGIN;
        SET LOCAL lock_timeout = '5s';
        ALTER TABLE app.posts ADD CONSTRAINT posts_user_fk
          FOREIGN KEY (user_id) REFERENCES app.users (id) NOT VALID;
        ALTER TABLE app.posts VALIDATE CONSTRAINT posts_user_fk;
        COMMIT;
    """,
    "concurrent index (dropped after the transaction)": """
        CREATE INDEX CONCURRENTLY posts_title ON app.posts (title);
    """,
    "concurrent index on a new column, in reverse order": """
        ALTER TABLE app.posts ADD COLUMN slug text;
        CREATE INDEX CONCURRENTLY posts_slug ON app.posts (slug);
        COMMENT ON COLUMN app.posts.slug IS 'for URLs';
        CREATE INDEX CONCURRENTLY posts_title ON app.posts (title);
        ALTER TABLE app.users ADD COLUMN z int;
    """,
    "constraints using an index, made here or already there": """
        CREATE UNIQUE INDEX CONCURRENTLY posts_title_idx ON app.posts (title);
        ALTER TABLE app.posts ADD CONSTRAINT posts_title_unique UNIQUE USING INDEX posts_title_idx;
        ALTER TABLE app.users ADD CONSTRAINT users_email_unique UNIQUE USING INDEX users_email_idx;
    """,
    "validations undone as not valid again": """
        ALTER TABLE app.posts VALIDATE CONSTRAINT posts_user_later;
        ALTER TABLE app.users VALIDATE CONSTRAINT users_age_positive;
    """,
    "dropped indexes and type changes from the catalog": """
        DROP INDEX app.users_age_idx;
        DROP INDEX CONCURRENTLY app.posts_user_id_idx;
        ALTER TABLE app.users ALTER COLUMN email TYPE varchar(200);
        ALTER TABLE app.users ALTER COLUMN name TYPE varchar(50);
        ALTER TABLE app.users ALTER COLUMN age TYPE bigint;
    """,
    "an index made and dropped in the same file": """
        CREATE INDEX posts_title_tmp ON app.posts (title);
        DROP INDEX app.posts_title_tmp;
    """,
    "quoted names of types, functions, sequences, views": """
        CREATE TYPE app."Mood" AS ENUM ('ok');
        CREATE FUNCTION app."F.x"() RETURNS int LANGUAGE sql AS 'SELECT 1';
        CREATE SEQUENCE app."Seq.1";
        CREATE VIEW app."Recent Posts" AS SELECT id FROM app.posts;
        COMMENT ON TABLE app."Mixed Case" IS 'it''s mixed';
    """,
    "partitions attached": """
        ALTER TABLE app.events ATTACH PARTITION app.events_2026
          FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    """,
}


@pytest.fixture
def db(target_dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(target_dsn, autocommit=True)
    conn.execute(BASE)
    return conn


def roll_back(conn: psycopg.Connection, sql: str) -> Rollback:
    rollback = generate_rollback(parse_statements(sql), catalog=LiveCatalog(conn))
    apply(conn, sql)
    apply(conn, rollback.sql)
    return rollback


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_rollbacks_restore_the_catalog_exactly(db: psycopg.Connection, name: str) -> None:
    before = schema_fingerprint(db)
    rollback = roll_back(db, CASES[name])
    assert rollback.complete, rollback.sql
    assert fingerprint_diff(before, schema_fingerprint(db)) == []


def test_the_fingerprint_sees_a_difference(db: psycopg.Connection) -> None:
    before = schema_fingerprint(db)
    db.execute(
        "ALTER TABLE app.users ALTER COLUMN name SET DEFAULT 'x'; CREATE INDEX extra ON app.posts (title)"
    )
    assert fingerprint_diff(before, schema_fingerprint(db)) == [
        "column app.users.name changed: text DEFAULT 'anon'::text -> text DEFAULT 'x'::text",
        "index app.extra added: CREATE INDEX extra ON app.posts USING btree (title)",
    ]


def test_the_rollback_is_one_transaction_and_concurrently_comes_after(db: psycopg.Connection) -> None:
    sql = "CREATE INDEX CONCURRENTLY c ON app.posts (title);\nALTER TABLE app.users ADD COLUMN z int;"
    rollback = generate_rollback(parse_statements(sql), catalog=LiveCatalog(db))
    lines = rollback.sql.splitlines()
    assert (
        lines.index("BEGIN;") < lines.index("ALTER TABLE app.users DROP COLUMN z;") < lines.index("COMMIT;")
    )
    assert lines.index("COMMIT;") < lines.index("DROP INDEX CONCURRENTLY app.c;")
    assert "SET LOCAL lock_timeout = '5s';" in lines


def test_steps_are_in_reverse_order_and_say_which_run_outside_a_transaction(db: psycopg.Connection) -> None:
    sql = CASES["concurrent index on a new column, in reverse order"]
    rollback = generate_rollback(parse_statements(sql), catalog=LiveCatalog(db))
    assert [(s.statement_index, s.outside) for s in rollback.steps] == [
        (4, False), (3, True), (2, False), (1, True), (0, False),
    ]  # fmt: skip
    in_block, seen = False, []
    for item in parse_statements(rollback.sql):
        text = item.statement.sql
        if text in ("BEGIN", "COMMIT"):
            in_block = text == "BEGIN"
        elif not text.startswith("SET LOCAL"):
            seen.append((text, in_block))
    assert [(text, not inside) for text, inside in seen] == [
        (s.sql.rstrip(";"), s.outside) for s in rollback.steps
    ]


def test_offline_what_only_the_catalog_knows_is_not_guessed() -> None:
    sql = (
        "DROP INDEX app.i;\nALTER TABLE app.t ALTER COLUMN a TYPE bigint;\n"
        "ALTER TABLE app.t VALIDATE CONSTRAINT c;\nALTER TABLE app.t ADD CONSTRAINT k UNIQUE USING INDEX i;\n"
        "DO $$ BEGIN PERFORM 1; END $$;"
    )
    rollback = generate_rollback(parse_statements(sql), catalog=OfflineCatalog(180000))
    assert [s.statement_index for s in rollback.irreversible] == [4, 3, 2, 1, 0]
    assert all(
        "unknown (target unreachable)" in (s.irreversible_reason or "") for s in rollback.irreversible[1:]
    )


def test_a_failing_step_leaves_nothing_half_done(db: psycopg.Connection) -> None:
    sql = "ALTER TABLE app.users ADD COLUMN z int;\nALTER TABLE app.posts ADD COLUMN w int;"
    rollback = generate_rollback(parse_statements(sql), catalog=LiveCatalog(db))
    db.execute("ALTER TABLE app.users ADD COLUMN z int")  # only the first statement ran
    before = schema_fingerprint(db)
    with pytest.raises(psycopg.errors.UndefinedColumn):
        db.execute(rollback.sql)  # one transaction: dropping w fails, dropping z is undone
    db.execute("ROLLBACK")
    assert fingerprint_diff(before, schema_fingerprint(db)) == []


def test_what_sql_cannot_undo_is_listed_never_dropped(db: psycopg.Connection) -> None:
    sql = (
        "ALTER TABLE app.users DROP COLUMN age;\nUPDATE app.users SET name = 'x';\n"
        "ALTER TABLE app.users ALTER COLUMN email TYPE varchar(200);\nDROP TABLE app.posts;\n"
        "CREATE TABLE app.keep (id int);"
    )
    rollback = generate_rollback(parse_statements(sql), catalog=LiveCatalog(db))
    assert not rollback.complete
    assert [s.statement_index for s in rollback.irreversible] == [3, 1, 0]  # the type comes from the catalog
    manual = [line for line in rollback.sql.splitlines() if line.startswith("-- MANUAL:")]
    assert len(manual) == 3 and all(MANUAL in line for line in manual)
    assert "-- MANUAL: L1 drop column app.users.age" in rollback.sql
    assert "DROP TABLE app.keep;" in rollback.sql


def test_offline_the_previous_default_is_not_guessed() -> None:
    rollback = generate_rollback(
        parse_statements("ALTER TABLE app.users ALTER COLUMN name SET DEFAULT 'x';"),
        catalog=OfflineCatalog(180000),
    )
    assert rollback.irreversible[0].irreversible_reason is not None
    assert "previous default unknown (target unreachable)" in rollback.irreversible[0].irreversible_reason


def test_a_rollback_file_beside_the_migration_is_found_and_checked(tmp_path: Path) -> None:
    migration = tmp_path / "070_x.sql"
    migration.write_text("CREATE TABLE x (id int);")
    assert find_rollback(migration) is None
    (tmp_path / "070_x.rollback.sql").write_text("DROP TABLE x;")
    found = find_rollback(migration)

    def draft() -> PlanDraft:
        return draft_plan(PlanningOnly.defaults(tmp_path), None, "070_x.sql", catalog=OfflineCatalog(180000))

    assert found is not None and draft().rollback.source == "file"
    assert draft().rollback_analysis is not None and draft().rollback.sql == "DROP TABLE x;"
    found.write_text("DROP TABLE;")
    with pytest.raises(UserError, match=r"rollback `070_x.rollback.sql`: syntax error"):
        draft()
    found.write_bytes("DROP TABLE x; -- café".encode("latin-1"))  # refused in words, not a traceback
    with pytest.raises(UserError, match=r"rollback `070_x.rollback.sql` is not UTF-8 text"):
        draft()


ROUND_TRIP = [name for name in sorted(EXPECTED) if name not in FAILING]


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_every_example_rolls_back_or_says_what_is_manual(target_dsn: str, name: str) -> None:
    load_example_schema(target_dsn, EXAMPLES)
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        for earlier in sorted(EXPECTED):
            if earlier == name:
                break
            if earlier not in FAILING:
                apply(conn, (MIGRATIONS / earlier).read_text())
        before = schema_fingerprint(conn)
        path = MIGRATIONS / name
        sql = path.read_text()
        found = find_rollback(path)
        rollback = (
            file_rollback(found.read_text(), found)
            if found
            else generate_rollback(parse_statements(sql), catalog=LiveCatalog(conn))
        )
        apply(conn, sql)
        if not rollback.complete:
            assert rollback.irreversible and MANUAL in rollback.sql
            return
        apply(conn, rollback.sql)
        assert fingerprint_diff(before, schema_fingerprint(conn)) == []
