"""The analysis: each hazard of the guide detected (and its safe variant not), complexity, version rules."""

from __future__ import annotations

import psycopg
import pytest

from bot.policy import load_policy
from bot.sql.analyze import analyze
from bot.sql.catalog import LiveCatalog, OfflineCatalog
from bot.sql.model import Analysis, Level, LockLevel, SqlSyntaxError

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
    covered = {c[0] for c in CASES} | {"add_column_default_rewrite", "add_column_default_version_unknown"}
    from tests.test_examples import HAZARD_CODES

    assert covered == HAZARD_CODES


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (100000, "add_column_default_rewrite"),
        (170000, None),
        (None, "add_column_default_version_unknown"),
    ],
)
def test_constant_default_depends_on_the_server_version(version: int | None, expected: str | None) -> None:
    found = codes(T + "ALTER TABLE app.t ADD COLUMN flag boolean DEFAULT false;", OfflineCatalog(version))
    version_codes = [c for c in found if c.startswith("add_column_default")]
    assert version_codes == ([expected] if expected else [])


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


def test_unknown_statements_are_named_not_ignored() -> None:
    a = run("DO $$ BEGIN PERFORM 1; END $$;")
    assert a.operations[0].kind == "other" and "Do statement" in a.operations[0].summary
    assert a.complexity is Level.MEDIUM


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
