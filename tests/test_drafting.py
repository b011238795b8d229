"""Drafting a plan: the checksums it computes and the analysis it hands on (to a process pool too)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest

from bot import drafting
from bot.config import planning_only_config
from bot.sql.analyze import analyze
from bot.sql.catalog import OfflineCatalog


@pytest.mark.parametrize("text", ["", "SELECT 1;\n", "-- é … 𝄞\nSELECT 'ü';\n" * 5])
def test_sha256_of_a_text_hashed_in_parts_is_that_of_its_utf8_whole(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drafting, "HASHED_CHARS", 3)
    assert drafting.sha256(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_an_analysis_pickles_as_a_process_pool_returns_it(tmp_path: Path) -> None:
    """Operations that lock nothing else share one empty mapping, which still pickles."""
    policy = planning_only_config(tmp_path).policy.complexity
    sql = "ALTER TABLE app.t ADD COLUMN c text;\nCREATE VIEW app.v AS SELECT id FROM app.t;\n"
    analysis = analyze(sql, catalog=OfflineCatalog(180000), policy=policy)
    assert pickle.loads(pickle.dumps(analysis)) == analysis
