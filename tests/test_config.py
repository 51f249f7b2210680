from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from pipeline.config import SECTIONS, from_mapping, load_params, load_section
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Inner:
    size: int = 3


@dataclass
class Section:
    name: str
    rate: float = 1.0
    mode: Literal["a", "b"] = "a"
    sizes: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    maybe: str | None = None


def test_repo_params_load_every_section():
    params = load_params(REPO / "params.yaml")
    assert set(params) == set(SECTIONS)
    assert params["preprocess"].face_size == 112  # the studio profile (tiny presets read 64 px)
    assert params["generate"].methods_per_target == {"cmdfd": 1, "fakeavceleb": 4}


def test_strict_conversion():
    s = from_mapping(Section, {"name": "x", "rate": 2, "sizes": [1, 2], "inner": {"size": 5}}, "sec")
    assert s == Section("x", 2.0, "a", [1, 2], Inner(5))


@pytest.mark.parametrize(
    "data,message",
    [
        ({"name": "x", "colour": 1}, r"sec: unknown key\(s\) \['colour'\]"),
        ({}, "sec.name: required key is missing"),
        ({"name": 3}, "sec.name: expected str, got int 3"),
        ({"name": "x", "rate": "fast"}, "sec.rate: expected a number"),
        ({"name": "x", "rate": True}, "sec.rate: expected a number"),
        ({"name": "x", "mode": "c"}, r"sec.mode: 'c' is not one of \['a', 'b'\]"),
        ({"name": "x", "sizes": [1, "2"]}, r"sec.sizes\[1\]: expected an integer"),
        ({"name": "x", "inner": {"size": 1.5}}, "sec.inner.size: expected an integer"),
        ({"name": "x", "inner": {"sise": 1}}, r"sec.inner: unknown key\(s\) \['sise'\]"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(Section, data, "sec")


def test_unknown_section_and_key_in_file(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("preprocess:\n  face_size: 224\ntrian:\n  epochs: 1\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['trian'\]"):
        load_params(p)
    p.write_text("preprocess:\n  face_sise: 224\n")
    with pytest.raises(ConfigError, match=r"preprocess: unknown key\(s\) \['face_sise'\]"):
        load_section("preprocess", p)
    p.write_text("preprocess: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(p)


def test_defaults_without_file():
    assert load_section("ray", None).object_store_mb == 512
