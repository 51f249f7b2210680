"""Recipes: which (target, audio, generator) tasks make a corpus, and how its rows are labelled."""
from __future__ import annotations

RECIPES: dict[str, str] = {
    "cmdfd": "generators.recipes.cmdfd:plan_cmdfd",
    "fakeavceleb": "generators.recipes.fakeavceleb:plan_fakeavceleb",
}
