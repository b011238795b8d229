"""The analysis: each hazard of the guide detected (and its safe variant not), complexity, version rules."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from bot.policy import load_policy
from bot.sql import nodes
from bot.sql.analyze import analyze
from bot.sql.catalog import LiveCatalog, OfflineCatalog
from bot.sql.model import Analysis, Kind, Level, LockLevel, SqlSyntaxError
from bot.sql.versions import oldest_supported

POLICY = load_policy().complexity
PG18 = OfflineCatalog(180000)
T = "SET lock_timeout = '5s';\n"  # the guard every example needs, so each case shows only its own hazard


def run(sql: str, catalog: object = PG18) -> Analysis:
    return analyze(sql, catalog=catalog, policy=POLICY)  # type: ignore[arg-type]


def codes(sql: str, catalog: object = PG18) -> list[str]:
    return [h.code for h in run(sql, catalog).hazards]


# (code, SQL that triggers it, the safe way that does not)
CASES = [
    (
        "index_without_concurrently",
        T + "CREATE INDEX i ON app.t (a);",
        "CREATE INDEX CONCURRENTLY i ON app.t (a);",
    ),
    (
        "concurrently_in_transaction",
        "BEGIN;\nCREATE INDEX CONCURRENTLY i ON app.t (a);\nCOMMIT;",
        "CREATE INDEX CONCURRENTLY i ON app.t (a);",
    ),
    (
        "add_column_not_null_without_default",
        T + "ALTER TABLE app.t ADD COLUMN c int NOT NULL;",
        T + "ALTER TABLE app.t ADD COLUMN c int NOT NULL DEFAULT 0;",
    ),
    (
        "add_column_volatile_default",
        T + "ALTER TABLE app.t ADD COLUMN c uuid DEFAULT gen_random_uuid();",
        T + "ALTER TABLE app.t ADD COLUMN c timestamptz DEFAULT now();",
    ),
    (
        "set_not_null",
        T + "ALTER TABLE app.t ALTER COLUMN c SET NOT NULL;",
        T
        + "ALTER TABLE app.t ADD CONSTRAINT c_nn CHECK (c IS NOT NULL) NOT VALID;\n"
        + "ALTER TABLE app.t VALIDATE CONSTRAINT c_nn;\nSELECT 1;\n"
        + "ALTER TABLE app.t ALTER COLUMN c SET NOT NULL;",
    ),
    (
        "constraint_validation",
        T + "ALTER TABLE app.t ADD CONSTRAINT ck CHECK (a > 0);",
        T
        + "ALTER TABLE app.t ADD CONSTRAINT ck CHECK (a > 0) NOT VALID;\n"
        + "ALTER TABLE app.t VALIDATE CONSTRAINT ck;",
    ),
    (
        "foreign_key_unindexed",
        T + "ALTER TABLE app.t ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES app.u (id) NOT VALID;",
        T
        + "CREATE INDEX CONCURRENTLY t_u ON app.t (u, a);\n"
        + "ALTER TABLE app.t ADD CONSTRAINT fk FOREIGN KEY (u) REFERENCES app.u (id) NOT VALID;",
    ),
    (
        "unique_without_index",
        T + "ALTER TABLE app.t ADD CONSTRAINT t_a_key UNIQUE (a);",
        T + "ALTER TABLE app.t ADD CONSTRAINT t_a_key UNIQUE USING INDEX t_a_idx;",
    ),
    (
        "rename_column",
        T + "ALTER TABLE app.t RENAME COLUMN a TO b;",
        T + "ALTER TABLE app.t ADD COLUMN b int;",
    ),
    ("rename_table", T + "ALTER TABLE app.t RENAME TO t2;", T + "CREATE TABLE app.t2 (id int);"),
    (
        "change_column_type",
        T + "ALTER TABLE app.t ALTER COLUMN a TYPE bigint;",
        T + "CREATE TABLE app.n (a int);\nALTER TABLE app.n ALTER COLUMN a TYPE bigint;",
    ),
    ("drop_column", T + "ALTER TABLE app.t DROP COLUMN a;", T + "ALTER TABLE app.t ADD COLUMN a2 int;"),
    ("drop_table", T + "DROP TABLE app.t;", T + "CREATE TABLE app.n (a int);\nDROP TABLE app.n;"),
    ("drop_index_without_concurrently", "DROP INDEX app.i;", "DROP INDEX CONCURRENTLY app.i;"),
    ("update_without_where", "UPDATE app.t SET a = 1;", "INSERT INTO app.t (a) VALUES (1);"),
    ("delete_without_where", "DELETE FROM app.t;", "INSERT INTO app.t (a) VALUES (1);"),
    ("data_migration", "UPDATE app.t SET a = 1 WHERE id < 1000;", "INSERT INTO app.t (a) VALUES (1);"),
    ("truncate", T + "TRUNCATE app.t;", "CREATE TABLE app.n (a int);\nTRUNCATE app.n;"),
    ("table_rewrite_maintenance", T + "VACUUM FULL app.t;", "VACUUM app.t;"),
    ("table_rewrite_maintenance", T + "REINDEX TABLE app.t;", "REINDEX TABLE CONCURRENTLY app.t;"),
    ("lock_table", T + "LOCK TABLE app.t IN SHARE MODE;", T + "ANALYZE app.t;"),
    (
        "merge_alters",
        T + "ALTER TABLE app.t ADD COLUMN b int;\nALTER TABLE app.t ADD COLUMN c int;",
        T + "ALTER TABLE app.t ADD COLUMN b int, ADD COLUMN c int;",
    ),
    (
        "missing_lock_timeout",
        "ALTER TABLE app.t ADD COLUMN b int;",
        T + "ALTER TABLE app.t ADD COLUMN b int;",
    ),
    ("not_analysed", "DO $$ BEGIN PERFORM 1; END $$;", "SELECT count(*) FROM app.t;"),
    ("not_analysed", "CALL app.migrate();", "SELECT set_config('search_path', '', false);"),
    ("not_analysed", "SELECT app.backfill(1000);", "SELECT setval('app.t_id_seq', 100);"),
    ("not_analysed", "CREATE PUBLICATION p FOR ALL TABLES;", "CREATE SCHEMA app2;"),
    ("cannot_run_in_transaction", "BEGIN;\nVACUUM app.t;\nCOMMIT;", "VACUUM app.t;"),
    (
        "enum_value_used_in_transaction",
        "BEGIN;\nALTER TYPE app.mood ADD VALUE 'meh';\nUPDATE app.t SET m = 'meh' WHERE id = 1;\nCOMMIT;",
        "BEGIN;\nALTER TYPE app.mood ADD VALUE 'meh';\nCOMMIT;\nUPDATE app.t SET m = 'meh' WHERE id = 1;",
    ),
    (
        "validate_in_same_transaction",
        "BEGIN;\n" + T + "ALTER TABLE app.t ADD CONSTRAINT ck CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE app.t VALIDATE CONSTRAINT ck;\nCOMMIT;",
        "BEGIN;\n" + T + "ALTER TABLE app.t ADD CONSTRAINT ck CHECK (a > 0) NOT VALID;\nCOMMIT;\n"
        "ALTER TABLE app.t VALIDATE CONSTRAINT ck;",
    ),
    (
        "transaction_left_open",
        "BEGIN;\nCREATE TABLE app.n (id int);",
        "BEGIN;\nCREATE TABLE app.n (id int);\nCOMMIT;",
    ),
    (
        "nested_transaction",
        "BEGIN;\nBEGIN;\nCREATE TABLE app.n (id int);\nCOMMIT;\nCOMMIT;",
        "BEGIN;\nCREATE TABLE app.n (id int);\nCOMMIT;",
    ),
    (
        "table_rewrite",
        T + "ALTER TABLE app.t SET TABLESPACE fast;",
        T + "ALTER TABLE app.t SET (fillfactor = 90);",
    ),
    ("dependent_objects", T + "DROP SCHEMA app CASCADE;", T + "DROP SCHEMA app;"),
    (
        "constraint_validation",
        T + "ALTER TABLE app.p ATTACH PARTITION app.p1 FOR VALUES IN (1);",
        T + "CREATE TABLE app.p1 (id int);\nALTER TABLE app.p ATTACH PARTITION app.p1 FOR VALUES IN (1);",
    ),
    (
        "unrelated_tables",
        T + "ALTER TABLE app.t ADD COLUMN b int;\nALTER TABLE app.other ADD COLUMN c int;",
        T
        + "ALTER TABLE app.t ADD COLUMN o int;\n"
        + "ALTER TABLE app.t ADD CONSTRAINT fk FOREIGN KEY (o) REFERENCES app.other (id) NOT VALID;",
    ),
]


@pytest.mark.parametrize(("code", "risky", "safe"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_hazard_is_found_and_its_safe_way_is_not(code: str, risky: str, safe: str) -> None:
    found = run(risky)
    assert code in [h.code for h in found.hazards]
    hazard = next(h for h in found.hazards if h.code == code)
    assert hazard.message and hazard.safe_alternative  # every hazard says what to do instead
    assert code not in codes(safe)


def test_every_hazard_code_is_covered_here() -> None:
    covered = {c[0] for c in CASES} | {"add_column_default_rewrite"}
    from tests.test_examples import HAZARD_CODES

    assert covered == HAZARD_CODES


@pytest.mark.parametrize(
    ("version", "expected"),
    [(100000, "add_column_default_rewrite"), (170000, None), (None, None)],
)
def test_constant_default_depends_on_the_server_version(version: int | None, expected: str | None) -> None:
    found = codes(T + "ALTER TABLE app.t ADD COLUMN flag boolean DEFAULT false;", OfflineCatalog(version))
    version_codes = [c for c in found if c.startswith("add_column_default")]
    assert version_codes == ([expected] if expected else [])


def test_with_no_version_known_the_oldest_supported_major_is_assumed_and_said() -> None:
    a = run(T + "ALTER TABLE app.t ADD COLUMN flag boolean DEFAULT false;", OfflineCatalog(None))
    assert a.hazards == [] and a.complexity is Level.LOW  # the guide's feature toggle passes --fail-on medium
    assert (a.target.server_version_num, a.target.source) == (None, "unknown")
    assert a.target.assumed_version_num == oldest_supported() and oldest_supported() >= 150000
    assert oldest_supported(date(2026, 11, 1)) == 140000 and oldest_supported(date(2040, 1, 1)) == 180000


def test_locks_rewrites_and_lines() -> None:
    a = run(
        "-- comment\nSET lock_timeout = '5s';\n\nALTER TABLE app.t\n  ADD COLUMN b int,\n"
        "  ALTER COLUMN c TYPE text;\nCREATE INDEX CONCURRENTLY i ON app.t (b);\n"
    )
    assert [(s.line, s.end_line) for s in a.statements] == [(2, 2), (4, 6), (7, 7)]
    assert [(op.statement_index, op.kind, op.lock) for op in a.operations] == [
        (0, "set_setting", LockLevel.NONE),
        (1, "add_column", LockLevel.ACCESS_EXCLUSIVE),
        (1, "alter_column_type", LockLevel.ACCESS_EXCLUSIVE),
        (2, "create_index", LockLevel.SHARE_UPDATE_EXCLUSIVE),
    ]
    assert [op.rewrites_table for op in a.operations] == [False, False, True, False]
    assert a.operations[3].transactional is False
    assert a.strongest_lock is LockLevel.ACCESS_EXCLUSIVE


def test_a_table_created_in_the_file_is_empty_and_safe_to_change() -> None:
    a = run(
        "CREATE TABLE app.n (id bigint PRIMARY KEY, a int);\nCREATE INDEX n_a ON app.n (a);\n"
        "ALTER TABLE app.n ADD COLUMN b int NOT NULL;\nALTER TABLE app.n ALTER COLUMN a SET NOT NULL;"
    )
    assert a.hazards == []
    assert a.complexity is Level.LOW


def test_complexity_follows_the_matrix_and_gives_every_reason() -> None:
    a = run(T + "ALTER TABLE app.t ADD COLUMN b int;\nALTER TABLE app.t RENAME COLUMN a TO z;")
    assert a.complexity is Level.HIGH
    assert [(r.level, r.statement_index) for r in a.complexity_reasons] == [(Level.LOW, 1), (Level.HIGH, 2)]
    assert "rename column" in a.complexity_reasons[1].reason


def test_policy_overrides_move_a_rule() -> None:
    policy = load_policy({"complexity": {"rules": {"rename_column": "medium"}}}).complexity
    a = analyze(T + "ALTER TABLE app.t RENAME COLUMN a TO z;", catalog=PG18, policy=policy)
    assert a.complexity is Level.MEDIUM


def test_more_tables_than_the_policy_allows_is_major_restructuring() -> None:
    sql = T + "".join(f"CREATE TABLE app.n{i} (id int);\n" for i in range(4))
    a = run(sql)
    assert a.complexity is Level.HIGH and "4 tables changed (over 3)" in a.complexity_reasons[-1].reason


def test_a_do_block_is_not_analysed_loudly_and_its_plain_sql_is() -> None:
    a = run(
        T + "DO $$\nDECLARE n int;\nBEGIN\n  ALTER TABLE app.t ADD COLUMN c uuid DEFAULT gen_random_uuid();\n"
        "  IF n > 0 THEN UPDATE app.t SET a = 1; END IF;\n  EXECUTE format('DROP TABLE %I', 'x');\nEND $$;"
    )
    [block] = [op for op in a.operations if op.kind is Kind.DO]
    assert block.other_locks == {"app.t": LockLevel.ACCESS_EXCLUSIVE} and a.tables == ["app.t"]
    assert [(h.code, h.severity, a.statements[h.statement_index].line) for h in a.hazards] == [
        ("not_analysed", Level.HIGH, 2),
        ("add_column_volatile_default", Level.HIGH, 2),
        ("update_without_where", Level.HIGH, 2),
    ]
    assert "dynamic SQL (EXECUTE) on line 7" in a.hazards[0].message
    assert a.hazards[1].message.startswith("in the DO block, line 5: ")
    assert a.hazards[2].message.startswith("in the DO block, line 6: ")
    assert a.complexity is Level.HIGH  # the backfill inside counts like one outside


def test_a_do_block_that_does_not_parse_says_so() -> None:
    a = run("DO LANGUAGE plpgsql $$ BEGIN this is not plpgsql; END $$;")
    assert "body could not be read" in a.hazards[0].message and a.hazards[0].severity is Level.HIGH
    assert "not analysed" in run("DO LANGUAGE plperl $$ 1 $$;").hazards[0].message


def test_every_statement_kind_is_modelled_or_flagged() -> None:
    statements = [
        "CREATE DOMAIN app.d AS int", "ALTER SEQUENCE app.s RESTART", "SHOW lock_timeout", "CHECKPOINT",
        "REFRESH MATERIALIZED VIEW app.mv", "ALTER TYPE app.mood ADD VALUE 'x'", "COPY app.t FROM STDIN",
        "CREATE MATERIALIZED VIEW app.mv AS SELECT 1", "LISTEN x", "ALTER SYSTEM SET work_mem = '1MB'",
    ]  # fmt: skip
    for sql in statements:
        a = run(sql + ";")
        assert a.operations[0].kind is not Kind.OTHER or "not_analysed" in [h.code for h in a.hazards], sql
    assert run("ALTER SYSTEM SET work_mem = '1MB';").operations[0].transactional is False


def test_options_are_read_by_their_value() -> None:
    assert run("VACUUM (FULL FALSE) app.t;").operations[0].kind is Kind.VACUUM
    assert run("VACUUM (FULL) app.t;").operations[0].kind is Kind.VACUUM_FULL
    assert run("VACUUM (FULL on) app.t;").operations[0].kind is Kind.VACUUM_FULL
    off = run("REINDEX (CONCURRENTLY false) TABLE app.t;").operations[0]
    on = run("REINDEX (CONCURRENTLY) TABLE app.t;").operations[0]
    assert (off.details["concurrent"], off.transactional, on.details["concurrent"]) == (False, True, True)


def test_reindex_and_drop_index_name_their_table_or_say_it_is_unknown() -> None:
    reindex = run(T + "REINDEX TABLE app.t;")
    assert reindex.operations[1].table == "app.t" and reindex.tables == ["app.t"]
    assert "ACCESS EXCLUSIVE lock on each index it rebuilds" in reindex.hazards[0].message
    assert "missing_lock_timeout" in codes("REINDEX TABLE app.t;")
    offline = run("DROP INDEX app.i;")
    assert offline.operations[0].table is None
    assert {h.code for h in offline.hazards} == {"drop_index_without_concurrently", "missing_lock_timeout"}
    assert "its table (unknown: target unreachable)" in offline.hazards[1].message


def test_foreign_keys_and_partitions_list_every_table_they_lock() -> None:
    a = run(T + "CREATE TABLE app.n (id int, u int REFERENCES app.u (id));")
    assert a.tables == ["app.n", "app.u"] and a.operations[2].other_locks == {
        "app.u": LockLevel.SHARE_ROW_EXCLUSIVE
    }
    attach = run(T + "ALTER TABLE app.p ATTACH PARTITION app.p1 FOR VALUES IN (1);").operations[1]
    assert (attach.table, attach.lock) == ("app.p", LockLevel.SHARE_UPDATE_EXCLUSIVE)
    assert attach.other_locks == {"app.p1": LockLevel.ACCESS_EXCLUSIVE}


def test_the_runner_settings_say_whether_a_missing_lock_timeout_matters() -> None:
    sql = "ALTER TABLE app.t ADD COLUMN b int;"
    plain = run(sql).hazards[0]
    by_bot = analyze(sql, catalog=PG18, policy=POLICY, runner_settings={"lock_timeout": "5s"}).hazards[0]
    assert (plain.code, plain.severity, by_bot.code, by_bot.severity) == (
        "missing_lock_timeout", Level.MEDIUM, "missing_lock_timeout", Level.LOW,
    )  # fmt: skip
    assert "when the bot runs this file it sets lock_timeout = '5s' itself" in by_bot.message


def test_syntax_errors_carry_line_and_column() -> None:
    with pytest.raises(SqlSyntaxError) as info:
        run("SELECT 1;\n\nALTER TABLE t ADD COLUMN;")
    assert (info.value.line, info.value.column) == (3, 25)


@pytest.fixture
def live(target_dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(target_dsn, autocommit=True)
    conn.execute(
        "CREATE SCHEMA app; CREATE TABLE app.big (id int PRIMARY KEY, a int, u int);"
        "CREATE TABLE app.small (id int PRIMARY KEY, a int);"
        "CREATE TABLE app.u (id int PRIMARY KEY); CREATE INDEX big_u ON app.big (u);"
        "INSERT INTO app.big SELECT i, i, i FROM generate_series(1, 5000) i;"
        "INSERT INTO app.small SELECT i, i FROM generate_series(1, 50) i;"
        "ALTER TABLE app.big ADD CONSTRAINT big_u_fk FOREIGN KEY (u) REFERENCES app.u (id) NOT VALID;"
        "ANALYZE;"
    )
    return conn


def test_table_size_from_the_live_catalog_decides_index_complexity(live: psycopg.Connection) -> None:
    policy = load_policy({"complexity": {"large_table_rows": 1000}}).complexity
    catalog = LiveCatalog(live)
    big = analyze("CREATE INDEX CONCURRENTLY i ON app.big (a);", catalog=catalog, policy=policy)
    small = analyze("CREATE INDEX CONCURRENTLY i ON app.small (a);", catalog=catalog, policy=policy)
    assert (big.complexity, small.complexity) == (Level.MEDIUM, Level.LOW)
    assert "app.big has ~5,000 rows (over 1,000)" in big.complexity_reasons[0].reason
    assert big.target.row_estimates == {"app.big": 5000}
    assert big.target.source == "live" and (big.target.server_version_num or 0) >= 180000


def test_the_live_catalog_knows_indexes_and_foreign_keys(live: psycopg.Connection) -> None:
    catalog = LiveCatalog(live)
    indexed = run(
        T + "ALTER TABLE app.big ADD CONSTRAINT f2 FOREIGN KEY (u) REFERENCES app.u (id) NOT VALID;", catalog
    )
    assert "foreign_key_unindexed" not in [h.code for h in indexed.hazards]
    related = run(T + "ALTER TABLE app.big ADD COLUMN x int;\nALTER TABLE app.u ADD COLUMN y int;", catalog)
    assert "unrelated_tables" not in [h.code for h in related.hazards]  # linked by big_u_fk in the catalog
    unrelated = run(
        T + "ALTER TABLE app.small ADD COLUMN x int;\nALTER TABLE app.u ADD COLUMN y int;", catalog
    )
    assert "unrelated_tables" in [h.code for h in unrelated.hazards]


def test_drop_index_takes_its_tables_lock(live: psycopg.Connection) -> None:
    a = run("DROP INDEX app.big_u;", LiveCatalog(live))
    assert a.operations[0].table == "app.big"
    assert {h.code for h in a.hazards} == {"drop_index_without_concurrently", "missing_lock_timeout"}
    offline = run("DROP INDEX app.big_u;")
    assert offline.operations[0].table is None  # not guessed


def test_a_widening_type_change_is_known_not_to_rewrite(live: psycopg.Connection) -> None:
    live.execute("ALTER TABLE app.small ADD COLUMN label varchar(50)")
    catalog = LiveCatalog(live)
    wide = run(T + "ALTER TABLE app.small ALTER COLUMN label TYPE varchar(200);", catalog)
    narrow = run(T + "ALTER TABLE app.small ALTER COLUMN label TYPE varchar(20);", catalog)
    assert (wide.operations[1].rewrites_table, narrow.operations[1].rewrites_table) == (False, True)
    assert [(h.code, h.severity) for h in wide.hazards] == [("change_column_type", Level.LOW)]
    assert [(h.code, h.severity) for h in narrow.hazards] == [("change_column_type", Level.HIGH)]


@pytest.mark.parametrize(
    ("sql", "summary"),
    [
        ("COMMENT ON TYPE app.mood IS 'how they feel';", "comment on type app.mood"),
        ("COMMENT ON FUNCTION app.f(int) IS 'adds one';", "comment on function app.f"),
        ("COMMENT ON SCHEMA app IS 'the app';", "comment on schema app"),
        ("COMMENT ON TABLE app.t IS 'a table';", "comment on table app.t"),
    ],
)
def test_a_comment_names_what_it_is_on(sql: str, summary: str) -> None:
    """A type's or a function's name is no plain string in the parse tree (planning these failed)."""
    assert [op.summary for op in run(sql).operations] == [summary]


def test_each_constant_default_is_printed_as_written() -> None:
    """Constants are printed once per value and type: '1' and 1 stay apart."""
    sql = "".join(
        f"ALTER TABLE app.t ALTER COLUMN c SET DEFAULT {value};\n"
        for value in ("'1'", "1", "'1'", "1.0", "true", "'it''s'", "NULL")
    )
    defaults = [op.details["default"] for op in run(sql).operations]
    assert defaults == ["'1'", "1", "'1'", "1.0", "TRUE", "'it''s'", "NULL"]


def test_printed_constants_and_types_are_remembered_within_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bot's worker plans file after file, and a 10 MB file may hold 200,000 distinct constants: what
    the analysis remembers of them stays bounded, and what it says is the same as unbounded."""
    sql = T + "".join(
        f"ALTER TABLE app.t{i} ADD COLUMN c{i} varchar({i + 1});\n"
        f"ALTER TABLE app.t{i} ALTER COLUMN c{i} SET DEFAULT 'v{i}';\n"
        for i in range(40)
    )
    unbounded = run(sql)
    nodes._CONSTANT_SQL.clear()
    nodes._TYPE_SQL.clear()
    monkeypatch.setattr(nodes, "CACHE_ENTRIES", 8)
    bounded = run(sql)
    assert 0 < len(nodes._CONSTANT_SQL) <= 8 and 0 < len(nodes._TYPE_SQL) <= 8
    assert bounded == unbounded
    assert [op.summary for op in bounded.operations[-2:]] == [
        "add column app.t39.c39 varchar(40)",
        "set default of app.t39.c39 to 'v39'",
    ]
