"""The exported iOS contract: schemas, golden vectors, Swift models, the reference codec."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pycrdt
import pytest
import tree_sitter_swift
from tree_sitter import Language, Parser
from typer.testing import CliRunner

from cli.main import app
from ios_bridge import contract, swift, vectors
from ios_bridge.reference_client import Contract, ContractError, FrameCodec, Record
from schema import COLLECTIONS
from sync import protocol as p
from sync._lib0 import Lib0Writer
from sync.record import RecordDoc

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("contract")
    result = runner.invoke(app, ["ios", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / f"v{p.PROTOCOL_VERSION}"


def test_export_covers_every_entity_and_message(exported: Path) -> None:
    index = json.loads((exported / "index.json").read_text())
    assert index["protocol_version"] == p.PROTOCOL_VERSION
    assert index["entities"] == sorted(COLLECTIONS)
    assert index["messages"] == [t.name for t in p.MessageType]
    for rel in index["files"]:
        jsonschema.Draft202012Validator.check_schema(json.loads((exported / rel).read_text())) \
            if rel.startswith(("entities/", "messages/")) else None
        assert (exported / rel).is_file()
    people = json.loads((exported / "entities/people.json").read_text())
    assert people["x-velocity"]["document"]["fields"]["notes"] == "text"
    assert people["x-velocity"]["document"]["fields"]["tags"] == "set"
    assert people["x-velocity"]["document"]["list_roots"]["tags"] == "tags.set"


def _drifted() -> list[str]:
    """The vector files whose rebuilt bytes differ from the committed ones."""
    folder = vectors.committed_folder()
    assert folder.is_dir(), (f"no golden vectors for protocol version {p.PROTOCOL_VERSION}: "
                             f"run `velocity ios vectors --out {folder}` and commit them")
    return [name for name, document in vectors.build().items()
            if contract.render(document) != (folder / name).read_text(encoding="utf-8")]


def test_committed_vectors_match_the_encoders() -> None:
    """Fails when any encoder's bytes drift while the protocol version stays the same."""
    assert _drifted() == [], (
        f"the encoders' output differs from the golden vectors of protocol version "
        f"{p.PROTOCOL_VERSION}. A wire change needs a version bump and new vectors.")


def test_a_changed_encoder_breaks_the_vector_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def ack_seq_first(w: Lib0Writer, m: p.Ack) -> None:  # the same fields, another order
        w.write_var_uint(len(m.entries))
        for update_id, seq in m.entries:
            w.write_var_uint(seq)
            w.write_var_string(update_id)

    with monkeypatch.context() as patched:
        patched.setitem(p._ENCODERS, p.Ack, (p.MessageType.ACK, ack_seq_first))
        assert _drifted() == ["frames.json"]

    write_values = RecordDoc._write_values

    def registers_reversed(self: RecordDoc, txn: Any, values: Mapping[str, Any],
                           *rest: Any) -> None:
        write_values(self, txn, dict(reversed(list(values.items()))), *rest)

    with monkeypatch.context() as patched:
        patched.setattr(RecordDoc, "_write_values", registers_reversed)
        assert _drifted() == ["crdt.json", "frames.json"]  # the frames carry the updates
    assert _drifted() == []


def test_the_cli_writes_the_committed_vectors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ios", "vectors", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(vectors.build()) == ["crdt.json", "frames.json"]
    for name in written:
        assert (tmp_path / name).read_bytes() == \
            (vectors.committed_folder() / name).read_bytes(), name


def test_vectors_decode_and_reencode_with_the_project_codec() -> None:
    frames = json.loads((vectors.committed_folder() / "frames.json").read_text())
    for v in frames["frames"]:
        message = p.decode(bytes.fromhex(v["hex"]))
        assert p.encode(message).hex() == v["hex"], v["name"]
    names = {v["name"] for v in frames["frames"]}
    assert {"hello_bootstrap", "pull_batch_snapshots", "push_batch", "ack",
            "refusal_not_owner", "pull_batch_live_update"} <= names
    assert {f"error_{reason}" for reason, _, _ in vectors.ERRORS} <= names


def test_vector_json_validates_against_the_message_schemas(exported: Path) -> None:
    frames = json.loads((exported / "vectors/frames.json").read_text())
    for v in frames["frames"]:
        schema = json.loads((exported / f"messages/{v['json']['type'].lower()}.json")
                            .read_text())
        jsonschema.validate(v["json"], schema)
    crdt = json.loads((exported / "vectors/crdt.json").read_text())
    for record in crdt["records"]:
        schema = json.loads((exported / f"entities/{record['collection']}.json").read_text())
        for step in record["steps"]:
            jsonschema.validate(step["content_after"], schema)


def test_reference_codec_reads_and_writes_every_vector(exported: Path) -> None:
    codec = FrameCodec(Contract(exported))
    frames = json.loads((exported / "vectors/frames.json").read_text())
    for v in frames["frames"]:
        assert codec.decode(bytes.fromhex(v["hex"])) == v["json"], v["name"]
        assert codec.encode(v["json"]["type"], v["json"]["fields"]).hex() == v["hex"], v["name"]
    for v in frames["invalid"]:
        with pytest.raises(ContractError) as refused:
            codec.decode(bytes.fromhex(v["hex"]))
        assert refused.value.code == v["refused_as"], v["name"]


def test_reference_client_replays_the_crdt_vectors(exported: Path) -> None:
    c = Contract(exported)
    crdt = json.loads((exported / "vectors/crdt.json").read_text())
    for record in crdt["records"]:
        replica = Record(c, record["guid"], client_id=1)
        for step in record["steps"]:
            replica.apply(bytes.fromhex(step["update_hex"]))
            assert replica.content() == step["content_after"], step["name"]
        first = record["steps"][0]
        writer = Record(c, record["guid"], client_id=first["client_id"])
        assert writer.write(first["edit"]["write"]).hex() == first["update_hex"]
    merge = crdt["merges"][0]
    for order in (merge["updates"], merge["updates"][::-1]):
        doc = pycrdt.Doc()
        doc.apply_update(bytes.fromhex(merge["base_state_hex"]))
        for u in order:
            doc.apply_update(bytes.fromhex(u["update_hex"]))
        replica = Record(c, "people/p-1001", client_id=1)
        replica.apply(bytes(doc.get_update()))
        assert replica.content() == merge["merged_content"]


def test_reference_client_imports_nothing_of_the_project() -> None:
    source = Path("ios_bridge/reference_client.py").read_text()
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    project = {"core", "schema", "sync", "hub", "edge_agent", "perception", "ios_bridge",
               "cli", "seeds", "gpu_hub"}
    assert not roots & project, roots & project


def _syntax_problems(source: str) -> list[str]:
    tree = Parser(Language(tree_sitter_swift.language())).parse(source.encode())
    problems: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            problems.append(f"{node.type} at {node.start_point}: {node.text[:60]!r}")
        stack.extend(node.children)
    return problems


def test_swift_models_are_stable_and_parse_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ios", "swift", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    source = (tmp_path / "VelocityContract.swift").read_text()
    assert source == swift.generate()  # deterministic: the same contract, the same file
    assert _syntax_problems(source) == []
    for name in ("struct Person: Codable", "struct Lead: Codable", "enum LeadStage: String",
                 "struct PullBatchFields: Codable", "struct PushBatchItemsEntry",
                 "struct PairingPayload: Codable", "struct BlendshapeSecond: Codable",
                 'case tenantId = "tenant_id"'):
        assert name in source
    # the check is real: a broken file is caught
    assert _syntax_problems(source.replace("public struct Lead: Codable, Equatable {",
                                           "public struct Lead: Codable, Equatable"))


def test_swift_models_are_the_same_in_another_process(tmp_path: Path) -> None:
    """Another interpreter with another hash seed writes the same file, byte for byte."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [str(Path(sys.executable).with_name("velocity")), "ios", "swift", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONHASHSEED": "4242", "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "VelocityContract.swift").read_text(encoding="utf-8") == swift.generate()


@pytest.mark.anyio
async def test_the_pairing_calls_in_the_contract_are_the_hubs() -> None:
    from hub.app import create_app
    from ios_bridge.pairing import pairing_payload_schema
    from tests.hubkit import running_hub

    async with running_hub() as server:  # the app serves a started hub
        api = create_app(server.hub).openapi()
    rules = pairing_payload_schema()["x-velocity"]
    redeem, identity = rules["redeem"], rules["identity"]
    operation = api["paths"][redeem["path"]][redeem["method"].lower()]
    body = api["components"]["schemas"][
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]]
    assert set(redeem["request"]["properties"]) == set(body["properties"])
    assert set(body["required"]) <= set(redeem["request"]["required"])
    answer = api["components"]["schemas"][operation["responses"]["200"]["content"][
        "application/json"]["schema"]["$ref"].rsplit("/")[-1]]
    assert set(redeem["response"]["required"]) == set(answer["required"])
    check = api["paths"][identity["path"]][identity["method"].lower()]
    assert [q["name"] for q in check["parameters"]] == list(identity["query"])
