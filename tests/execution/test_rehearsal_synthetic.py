"""Synthetic rows for rehearsals on copies without data: values that satisfy the tables' constraints, and the
tables that cannot be filled named with why."""

from __future__ import annotations

import psycopg
import pytest

from bot.execution.synthetic import Fill, fill_tables

SCHEMA = """
CREATE SCHEMA shop;
CREATE TYPE shop.mood AS ENUM ('calm', 'busy', 'closed');
CREATE DOMAIN shop.percent AS int CHECK (VALUE BETWEEN 0 AND 100);
CREATE TABLE shop.customers (id int PRIMARY KEY, email varchar(60) NOT NULL UNIQUE CHECK (email LIKE '%@%'));
INSERT INTO shop.customers VALUES (1, 'a@example.com'), (2, 'b@example.com');
CREATE TABLE shop.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id int NOT NULL REFERENCES shop.customers,
  code varchar(8) NOT NULL UNIQUE,
  mood shop.mood NOT NULL,
  discount shop.percent,
  quantity int NOT NULL CHECK (quantity > 0),
  rating int CHECK (rating BETWEEN 1 AND 5),
  placed_at timestamptz NOT NULL DEFAULT now(),
  tags text[] NOT NULL,
  details jsonb,
  paid boolean NOT NULL,
  total numeric(12, 2) NOT NULL
);
CREATE TABLE shop.order_lines (
  order_id bigint NOT NULL REFERENCES shop.orders,
  line int NOT NULL,
  PRIMARY KEY (order_id, line)
);
CREATE TABLE shop.warehouses (id int PRIMARY KEY);
CREATE TABLE shop.stock (warehouse_id int NOT NULL REFERENCES shop.warehouses, item text);
CREATE TABLE shop.places (id int PRIMARY KEY, spot point NOT NULL);
"""


@pytest.fixture
def shop(target_dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(target_dsn, autocommit=True)
    conn.execute(SCHEMA)
    yield conn  # type: ignore[misc]
    conn.close()


def test_rows_satisfy_types_checks_uniques_and_foreign_keys(
    shop: psycopg.Connection, target_dsn: str
) -> None:
    tables = ["shop.order_lines", "shop.orders", "shop.customers", "shop.no_such_table"]
    fills = fill_tables(shop, target_dsn, tables, 500)
    assert fills == [  # referenced tables first
        Fill("shop.customers", 500),
        Fill("shop.orders", 500),
        Fill("shop.order_lines", 500),
    ]
    orders = shop.execute(
        "SELECT count(*), count(DISTINCT customer_id), count(DISTINCT mood), count(DISTINCT code), "
        "count(rating), count(discount) FROM shop.orders"
    ).fetchone()
    # the CHECKed nullable columns are NULL: counting up from 1 breaks the rating's and the domain's checks
    assert orders == (500, 500, 3, 500, 0, 0)
    assert shop.execute("SELECT count(*) FROM pg_stats WHERE schemaname = 'shop'").fetchone() != (0,)


def test_a_table_that_cannot_be_filled_is_left_alone_and_named(
    shop: psycopg.Connection, target_dsn: str
) -> None:
    fills = fill_tables(shop, target_dsn, ["shop.stock", "shop.places"], 10)
    assert fills == [
        Fill("shop.stock", 0, "a NOT NULL foreign key references shop.warehouses, which has no rows"),
        Fill("shop.places", 0, "no value of type point can be made for NOT NULL column spot"),
    ]
    assert shop.execute(
        "SELECT (SELECT count(*) FROM shop.stock) + (SELECT count(*) FROM shop.places)"
    ).fetchone() == (0,)


def test_rows_colliding_with_a_unique_index_are_skipped(shop: psycopg.Connection, target_dsn: str) -> None:
    shop.execute("CREATE TABLE shop.profiles (customer_id int UNIQUE REFERENCES shop.customers, bio text)")
    assert fill_tables(shop, target_dsn, ["shop.profiles"], 10) == [Fill("shop.profiles", 2)]


def test_a_table_postgresql_refuses_to_fill_is_skipped_with_its_reason(
    shop: psycopg.Connection, target_dsn: str
) -> None:
    shop.execute("CREATE TABLE shop.few (id smallint PRIMARY KEY, level smallint NOT NULL UNIQUE)")
    shop.execute("INSERT INTO shop.few VALUES (1, 32000)")
    (fill,) = fill_tables(shop, target_dsn, ["shop.few"], 40000)
    assert fill.skipped is not None and "smallint out of range" in fill.skipped


def test_a_table_of_defaults_only_gets_rows_of_defaults(shop: psycopg.Connection, target_dsn: str) -> None:
    shop.execute(
        "CREATE TABLE shop.visits (id bigint GENERATED ALWAYS AS IDENTITY, at timestamptz DEFAULT now())"
    )
    assert fill_tables(shop, target_dsn, ["shop.visits"], 5) == [Fill("shop.visits", 5)]
    assert shop.execute("SELECT max(id), count(at) FROM shop.visits").fetchone() == (5, 5)
