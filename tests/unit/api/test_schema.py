"""protos/ is generated from the models: it must match them, and mean what they mean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from peapod.api.schema import SCHEMA_DIALECT, main, render_protos, stale_protos, write_protos
from peapod.bus import subjects

ROOT = Path(__file__).resolve().parents[3]
PROTOS = ROOT / "protos"


def unknown_keys(instance: Any, schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> list[str]:
    """Paths of keys the schema does not allow (jsonschema is not a dependency; this is all we need)."""
    if "$ref" in schema:
        return unknown_keys(instance, defs[schema["$ref"].rsplit("/", 1)[-1]], defs, path)
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        return min((unknown_keys(instance, b, defs, path) for b in branches), key=len)
    if isinstance(instance, list) and "items" in schema:
        return [p for i, item in enumerate(instance)
                for p in unknown_keys(item, schema["items"], defs, f"{path}[{i}]")]
    if not isinstance(instance, dict):
        return []
    found = []
    properties = schema.get("properties", {})
    for key, value in instance.items():
        where = f"{path}.{key}" if path else key
        if key in properties:
            found.extend(unknown_keys(value, properties[key], defs, where))
        elif schema.get("additionalProperties") is False:
            found.append(where)
    return found


def pod_schema() -> dict[str, Any]:
    return json.loads((PROTOS / "pod.schema.json").read_text())


def test_committed_protos_match_what_the_models_generate():
    assert stale_protos(PROTOS) == [], "run `make protos` and commit the result"


def test_check_names_each_file_that_drifted_or_is_missing(tmp_path, capsys):
    write_protos(tmp_path)
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "pod.schema.json").write_text("{}\n")
    (tmp_path / "subjects.md").unlink()
    assert main(["--check", str(tmp_path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{tmp_path}/pod.schema.json is out of date: run `make protos`",
        f"{tmp_path}/subjects.md is missing: run `make protos`",
    ]


def test_write_produces_deterministic_files_with_a_trailing_newline(tmp_path):
    assert main(["--write", str(tmp_path)]) == 0
    first = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert first == render_protos()
    assert all(text.endswith("}\n") or text.endswith("|\n") for text in first.values())
    assert render_protos() == first


def test_each_schema_declares_its_dialect_and_id():
    for name in ("pod.schema.json", "node.schema.json", "event.schema.json"):
        schema = json.loads((PROTOS / name).read_text())
        assert schema["$schema"] == SCHEMA_DIALECT
        assert schema["$id"].endswith(name)


def test_pod_schema_uses_wire_names_and_forbids_unknown_fields():
    schema = pod_schema()
    defs = schema["$defs"]
    assert schema["required"] == ["metadata", "spec"]
    assert defs["PodSpec"]["required"] == ["containers"]
    spec_fields = set(defs["PodSpec"]["properties"])
    assert {"restartPolicy", "nodeName", "terminationGracePeriodSeconds"} <= spec_fields
    assert {"imagePullPolicy", "volumeMounts", "workingDir"} <= set(defs["Container"]["properties"])
    assert "hostIP" in defs["ContainerPort"]["properties"]
    for model in ("Container", "PodSpec", "ObjectMeta", "Volume", "VolumeMount"):
        assert defs[model]["additionalProperties"] is False, model


def test_pod_schema_accepts_the_seed_manifest_and_refuses_an_unknown_field():
    schema = pod_schema()
    seed = yaml.safe_load((ROOT / "examples" / "db.yml").read_text())
    assert unknown_keys(seed, schema, schema["$defs"]) == []
    seed["spec"]["containers"][0]["imagee"] = "mongo"
    assert unknown_keys(seed, schema, schema["$defs"]) == ["spec.containers[0].imagee"]


def test_subject_table_lists_every_subject_stream_and_bucket():
    text = (PROTOS / "subjects.md").read_text()
    assert "do not edit" in text
    assert "| Subject | Publisher | Subscriber |" in text
    for subject, publisher, subscriber in subjects.SUBJECT_TABLE:
        assert f"| `{subject}` | {publisher} | {subscriber} |" in text
    for name in (subjects.KV_BUCKET, subjects.NODES_STREAM, subjects.WATCH_STREAM,
                 subjects.EVENTS_STREAM, subjects.LEASE_BUCKET):
        assert f"| `{name}` |" in text


def test_importing_the_api_does_not_import_the_bus():
    code = "import sys, peapod.api, peapod.api.schema; print('peapod.bus' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
