"""docs/config.md describes every key the loader knows, and docs/ links resolve.

The keys come from the structs in config.py (config.key_paths), so a key added to the code without its documentation fails here.
"""

from __future__ import annotations

import glob
import os
import re

from osq_dbwatch import catalog
from osq_dbwatch.config import MAX_ALIAS_VALUES, key_paths

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")


def read(name: str) -> str:
    with open(os.path.join(DOCS, name), encoding="utf-8") as handle:
        return handle.read()


def test_config_reference_documents_every_key() -> None:
    text = read("config.md")
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M))
    assert set(key_paths()) - documented == set()
    assert documented - set(key_paths()) == set()  # no key the loader does not know


def test_config_reference_states_the_limits_and_engines() -> None:
    text = read("config.md")
    assert f"{MAX_ALIAS_VALUES:,}" in text
    for engine in catalog.Engine.__args__:  # type: ignore[attr-defined]
        assert f"`{engine}`" in text


def test_docs_relative_links_resolve() -> None:
    broken = []
    for path in glob.glob(os.path.join(DOCS, "*.md")):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            if not os.path.exists(os.path.normpath(os.path.join(DOCS, target))):
                broken.append(f"{os.path.basename(path)}: {target}")
    assert broken == []
