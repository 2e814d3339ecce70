"""The config's one declaration (benchmark/config/settings.py, schema.py): the shipped JSON Schema
and the key tables are generated from it, every shipped config satisfies it, and a wrong config
is refused by the JSON Schema (an editor) and by the harness alike, naming the same key."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from benchmark import cli, config
from benchmark.config import reference, schema

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "benchmark" / "configs" / reference.SCHEMA_FILE
CONFIGS = sorted(config.shipped_configs().values()) + [ROOT / "examples" / "my-method.yaml"]


def test_shipped_schema_and_key_tables_are_generated_from_the_declaration(capsys):
    assert SHIPPED.read_text() == reference.json_text(), "run: drkd-bench schema > " + str(SHIPPED)
    assert (ROOT / "docs" / "config-keys.md").read_text() == reference.markdown(), \
        "run: drkd-bench schema --markdown > docs/config-keys.md"
    assert cli.main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(SHIPPED.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_satisfies_the_json_schema_and_points_to_it(path):
    validator = jsonschema.Draft202012Validator(json.loads(SHIPPED.read_text()))
    raw = yaml.safe_load(path.read_text())
    assert [e.message for e in validator.iter_errors(raw)] == []
    first = path.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    target = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == SHIPPED.resolve()


TINY = {"seeds": 2, "datasets": ["digits"], "architectures": ["mlp"], "methods": ["ce"]}

WRONG = [  # (a change to TINY, the key both must name)
    ({"train": {"epochs": 0}}, "epochs"),
    ({"train": {"epoch": 3}}, "epoch"),
    ({"train": {"momentum": "high"}}, "momentum"),
    ({"train": {"schedule": "linear"}}, "schedule"),
    ({"datasets": {"digits": {"val_fraction": 1.5}}}, "val_fraction"),
    ({"datasets": {"digits": {"noise": {"kind": "pair", "rate": 1.2}}}}, "rate"),
    ({"datasets": {"digits": {"augment": {"flip": "yes"}}}}, "flip"),
    ({"tune": {"trials": 0}}, "trials"),
    ({"tune": {"budget": "lots"}}, "budget"),
    ({"compute": {"match": "time"}}, "match"),
    ({"colour": "red"}, "colour"),
    ({"seeds": [-1]}, "seeds"),
]


def _json_schema_says(raw: dict) -> str:
    validator = jsonschema.Draft202012Validator(json.loads(SHIPPED.read_text()))
    error = jsonschema.exceptions.best_match(validator.iter_errors(raw))
    assert error is not None, "the JSON Schema accepted it"
    return " ".join(map(str, error.absolute_path)) + " " + error.message


@pytest.mark.parametrize("change, key", WRONG, ids=[k for _, k in WRONG])
def test_a_wrong_config_is_refused_by_the_schema_and_the_harness_naming_one_key(change, key,
                                                                                tmp_path):
    raw = {**TINY, **change}
    editor = _json_schema_says(raw)
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError) as harness:
        config.load_grid(str(path))
    message = str(harness.value)
    assert key in editor and key in message, (editor, message)
    assert message.startswith(str(path)) and "\n" not in message


def test_the_tiny_config_passes_both():
    assert jsonschema.Draft202012Validator(json.loads(SHIPPED.read_text())).is_valid(TINY)
    assert config.parse_grid(TINY, "tiny.yaml").seeds == (0, 1)


def test_error_messages_come_from_the_declared_ranges():
    with pytest.raises(ValueError, match=r"^f: train: gamma must lie in \(0, 1\], got 0$"):
        schema.validate(schema.TrainSection, {"gamma": 0}, "f: train")
    with pytest.raises(ValueError, match=r"^f: train: lr must be finite and > 0, got inf$"):
        schema.validate(schema.TrainSection, {"lr": float("inf")}, "f: train")
    with pytest.raises(ValueError, match=r"^f: train: momentum must lie in \[0, 1\), got 1$"):
        schema.validate(schema.TrainSection, {"momentum": 1}, "f: train")
    assert schema.validate(schema.TrainSection, {"lr": "1e-3"}, "f").lr == 0.001  # YAML 1.1
    empty = {**TINY, "methods": [{"method": "ce", "label": ""}], "plugins": []}
    with pytest.raises(ValueError, match=r"^g: methods.0.label: expected a non-empty string$"):
        schema.validate(schema.GridFile, empty, "g")  # was "expected a string, got ''"
    with pytest.raises(ValueError, match=r"^g: methods: expected a non-empty list$"):
        schema.validate(schema.GridFile, {**TINY, "methods": []}, "g")
