"""Strict loading of protocol files: every mistake is a ConfigError naming the key."""
from __future__ import annotations

import textwrap

import pytest

from benchmark.protocols import load_protocol_file
from benchmark.protocols.catalog import DEFINITIONS
from pipeline.errors import ConfigError

GOOD = """
family: intra
protocols:
  - name: my-protocol
    version: "1.0.0"
    description: a test protocol
    corpora: [fakeavceleb]
    split:
      random: {test: 0.3, val: 0.1, by: video_id, seed: 0}
    categories:
      RVFA: {category: RVFA, method: rtvc}
    averages:
      AVG: [RVFA]
"""


def _write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_good_file_loads(tmp_path):
    (p,) = load_protocol_file(_write(tmp_path, GOOD))
    assert (p.name, p.version, p.family, p.folds) == ("my-protocol", "1.0.0", "intra", ["main"])


def test_every_shipped_file_loads():
    files = sorted(DEFINITIONS.glob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        assert load_protocol_file(f)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    corpora:", "    corpus_list: [x]\n    corpora:", r"protocols\[0\]: unknown key\(s\) \['corpus_list'\]"),
        ("random: {test: 0.3,", "random: {tset: 0.3,", r"split\.random: unknown key\(s\) \['tset'\]"),
        ('version: "1.0.0"', "version: 1.0", r"protocols\[0\]\.version: expected str"),
        ('version: "1.0.0"', 'version: "v1"', r"version: 'v1' must look like '1.0.0'"),
        ("test: 0.3", "test: 1.5", r"split\.random\.test: fraction 1.5"),
        ("by: video_id", "by: video", r"split\.random\.by: 'video' is not a Clip field"),
        ("method: rtvc}", "methd: rtvc}", r"categories\.RVFA: unknown selector field 'methd' \(did you mean 'method'\?\)"),
        ("category: RVFA,", "label: true,", r"categories\.RVFA\.label: expected int, got bool"),
        ("AVG: [RVFA]", "AVG: [FVFA]", r"averages\.AVG: members \['FVFA'\] are not folds or categories"),
        ("name: my-protocol", "name: My Protocol", r"name: 'My Protocol' must be lower-case"),
        (
            "      random: {test: 0.3, val: 0.1, by: video_id, seed: 0}",
            "      random: {test: 0.3}\n      groups: {field: ethnicity, train: [a], val: [b], test: [c]}",
            r"split: give exactly one of .* \(got \['random', 'groups'\]\)",
        ),
    ],
)
def test_malformed_protocol_is_refused_with_the_key_named(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(ConfigError, match=message):
        load_protocol_file(_write(tmp_path, GOOD.replace(old, new, 1)))


def test_leave_one_out_must_hold_out_known_categories(tmp_path):
    text = GOOD.replace(
        "      random: {test: 0.3, val: 0.1, by: video_id, seed: 0}",
        "      leave_one_out:\n"
        "        held_out: [RVFA, FVXX]\n"
        "        real: {label: 0}\n"
        "        video_split: {test: 0.3}\n",
    )
    with pytest.raises(ConfigError, match=r"held_out: 'FVXX' is not one of the protocol's categories \['RVFA'\]"):
        load_protocol_file(_write(tmp_path, text))


def test_groups_cannot_put_one_value_in_two_parts(tmp_path):
    text = GOOD.replace(
        "      random: {test: 0.3, val: 0.1, by: video_id, seed: 0}",
        "      groups: {field: ethnicity, train: [a, b], val: [c], test: [b]}",
    )
    with pytest.raises(ConfigError, match=r"ethnicity 'b' is in both train and test"):
        load_protocol_file(_write(tmp_path, text))


def test_duplicate_version_and_bad_yaml(tmp_path):
    body = GOOD.split("protocols:\n", 1)[1]
    with pytest.raises(ConfigError, match=r"my-protocol version 1.0.0 is defined twice"):
        load_protocol_file(_write(tmp_path, GOOD + body))
    with pytest.raises(ConfigError, match=r"not valid YAML"):
        load_protocol_file(_write(tmp_path, "family: [unclosed"))
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_protocol_file(tmp_path / "missing.yaml")


def test_studio_methods_table_must_cover_every_method(tmp_path):
    text = GOOD.replace("family: intra", "family: studio\nmethods:\n  wav2lip: {generator: g, mirrors: m}")
    with pytest.raises(ConfigError, match=r"method\(s\) \['rtvc'\] are not in the file's `methods` table"):
        load_protocol_file(_write(tmp_path, text))
