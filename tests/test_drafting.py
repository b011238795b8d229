"""Drafting a plan: what it computes about the files it reads."""

from __future__ import annotations

import hashlib

import pytest

from bot import drafting


@pytest.mark.parametrize("text", ["", "SELECT 1;\n", "-- é … 𝄞\nSELECT 'ü';\n" * 5])
def test_sha256_of_a_text_hashed_in_parts_is_that_of_its_utf8_whole(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drafting, "HASHED_CHARS", 3)
    assert drafting.sha256(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()
