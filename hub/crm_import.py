"""CRM imports: a CSV of contacts becomes proposals (a new person, a merge into the one existing
person with the same phone or email, or a conflict between several), a director reviews each,
and the accepted ones are committed together.

A file with a bad row is refused whole (every problem listed by line) and proposes nothing.
The commit writes every accepted proposal in one transaction through the CRDT write path; a
merge only fills the person's empty fields (a differing value is shown, never overwritten).
New people get the id ``<batch>-<line>``, so a commit retried after a failure cannot create
anyone twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from core.errors import Conflict, NotFound, RecordInvalid
from core.identity import Principal
from core.ids import new_id
from hub.import_batches import batch
from hub.import_csv import CsvRow, RowErrors, normalise_email, normalise_phone, read_csv
from hub.service import Hub
from hub.store import create_many
from schema.models import Person

COLUMNS = ("full_name", "phone", "email", "city", "country", "nationality", "segment",
           "source", "tags")
REQUIRED = ("full_name",)
MERGED_FIELDS = ("full_name", "primary_phone", "email", "city", "country", "nationality",
                 "segment", "source")
_FIELD_COLUMN = {"primary_phone": "phone"}


async def propose(hub: Hub, principal: Principal, filename: str, data: bytes,
                  country_code: str) -> dict[str, Any]:
    """Read a CSV of contacts into a batch: proposals when every row is good, else refused."""
    rows = read_csv(data, required=REQUIRED, known=COLUMNS)
    errors = RowErrors()
    people = [(row, _person(row, errors, country_code)) for row in rows]
    _in_file_duplicates(people, errors)
    proposals = [] if errors else await _match(hub, principal, people)
    summary = {a: sum(1 for p in proposals if p["action"] == a)
               for a in ("create", "merge", "conflict")}
    batch_id = new_id()
    await hub.storage.imports.add_crm_batch(
        principal.tenant_id, batch_id, filename[:200], "refused" if errors else "proposed",
        principal.user_id, len(rows), errors.items, summary, proposals)
    return await batch(hub, principal, batch_id)


def _person(row: CsvRow, errors: RowErrors, country_code: str) -> dict[str, Any] | None:
    """The person fields of one row, or None (its problems added to ``errors``)."""
    v = row.values
    fields: dict[str, Any] = {k: v[k] for k in ("full_name", "city", "country", "nationality",
                                                "segment", "source") if k in v}
    bad = len(errors.items)
    if row.extra_cells:
        errors.add(row.line, None, "more cells than the header has columns")
    try:
        if "phone" in v:
            fields["primary_phone"] = normalise_phone(v["phone"], country_code)
    except ValueError as exc:
        errors.add(row.line, "phone", str(exc))
    try:
        if "email" in v:
            fields["email"] = normalise_email(v["email"])
    except ValueError as exc:
        errors.add(row.line, "email", str(exc))
    if "tags" in v:
        fields["tags"] = sorted({t.strip() for t in v["tags"].split(";") if t.strip()})
    try:
        Person.model_validate({"id": "x", "tenant_id": "t", **fields})
    except ValidationError as exc:
        errors.add_validation(row.line, exc, _FIELD_COLUMN)
    return fields if len(errors.items) == bad else None


def _in_file_duplicates(people: list[tuple[CsvRow, dict[str, Any] | None]],
                        errors: RowErrors) -> None:
    seen: dict[tuple[str, str], int] = {}
    for row, fields in people:
        for key in ("primary_phone", "email"):
            value = (fields or {}).get(key)
            if value is None:
                continue
            if (key, value) in seen:
                errors.add(row.line, "phone" if key == "primary_phone" else key,
                           f"the same {value} as line {seen[key, value]}: make them one row")
            seen.setdefault((key, value), row.line)


async def _match(hub: Hub, principal: Principal,
                 people: list[tuple[CsvRow, dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """One proposal per row, matched on normalised phone or email against the tenant's
    people."""
    phones = [f["primary_phone"][-10:] for _, f in people if f and f.get("primary_phone")]
    emails = [f["email"] for _, f in people if f and f.get("email")]
    found = await hub.storage.imports.people_matching(principal.tenant_id, phones, emails)
    by_key: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for person in found:
        for key, raw, normalise in (("primary_phone", person["primary_phone"], normalise_phone),
                                    ("email", person["email"], normalise_email)):
            try:
                value = normalise(raw) if raw else None
            except ValueError:
                continue
            if value is not None:
                by_key.setdefault((key, value), []).append(person)
    proposals = []
    for row, fields in people:
        assert fields is not None  # every row is good here
        matches: dict[str, tuple[asyncpg.Record, list[str]]] = {}
        for key in ("primary_phone", "email"):
            for person in by_key.get((key, fields.get(key) or ""), []):
                matches.setdefault(person["id"], (person, []))[1].append(
                    "phone" if key == "primary_phone" else "email")
        action = "create" if not matches else "merge" if len(matches) == 1 else "conflict"
        target = next(iter(matches.values()))[0] if action == "merge" else None
        proposals.append({
            "row_no": row.line, "action": action,
            "person_id": target["id"] if target is not None else None,
            "candidates": [{"id": p["id"], "full_name": p["full_name"],
                            "primary_phone": p["primary_phone"], "email": p["email"],
                            "matched_on": on} for p, on in matches.values()],
            "fields": fields,
            "changes": _changes(dict(target), fields) if target is not None else {},
        })
    return proposals


def _changes(person: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """What a merge does: fills (fields the person lacks), keeps (differing values it does
    not overwrite) and new tags."""
    fills = {k: fields[k] for k in MERGED_FIELDS if fields.get(k) and not person.get(k)}
    kept = {k: {"current": person[k], "imported": fields[k]} for k in MERGED_FIELDS
            if fields.get(k) and person.get(k) and k not in ("primary_phone", "email")
            and str(person[k]).strip().lower() != str(fields[k]).strip().lower()}
    tags = sorted(set(fields.get("tags") or ()) - set(person.get("tags") or ()))
    return {"fill": fills, "kept": kept, "add_tags": tags}


async def review(hub: Hub, principal: Principal, batch_id: str, row_no: int | None,
                 decision: str, person_id: str | None) -> dict[str, Any]:
    """Accept or reject one proposal (``row_no``), or every pending create and merge (None).
    Accepting a conflict names the person to merge into (one of its candidates)."""
    current = await batch(hub, principal, batch_id)
    if current["status"] != "proposed":
        raise Conflict(f"batch {batch_id} is {current['status']}: nothing to review")
    if row_no is None:
        if person_id is not None:
            raise RecordInvalid("person_id names the merge target of one proposal (give row)")
        await hub.storage.imports.decide_all(principal.tenant_id, batch_id, decision,
                                             principal.user_id)
        return await batch(hub, principal, batch_id)
    proposal = next((p for p in current["proposals"] if p["row_no"] == row_no), None)
    if proposal is None:
        raise NotFound(f"batch {batch_id} has no proposal for line {row_no}")
    action, target = proposal["action"], proposal["person_id"]
    if person_id is not None or (decision == "accepted" and action == "conflict"):
        candidates = {c["id"]: c for c in proposal["candidates"]}
        if person_id not in candidates:
            raise RecordInvalid(f"line {row_no} matches {', '.join(candidates) or 'nobody'}: "
                                "name one of them as person_id to merge into")
        person = await hub.storage.imports.person(principal.tenant_id, person_id)
        if person is None:
            raise NotFound(f"person {person_id} no longer exists")
        target = person_id
        proposal["changes"] = _changes(person, proposal["fields"])
    await hub.storage.imports.decide(principal.tenant_id, batch_id, row_no, decision, target,
                                     proposal["changes"], principal.user_id)
    return await batch(hub, principal, batch_id)


async def commit(hub: Hub, principal: Principal, batch_id: str, *, dry_run: bool
                 ) -> dict[str, Any]:
    """Write every accepted proposal in one transaction (none when one fails); with
    ``dry_run``, only report what would be written. Every proposal must be reviewed."""
    current = await batch(hub, principal, batch_id)
    if current["status"] != "proposed":
        raise Conflict(f"batch {batch_id} is {current['status']}: it cannot be committed")
    pending = [p["row_no"] for p in current["proposals"] if p["decision"] == "pending"]
    if pending:
        raise Conflict(f"lines {', '.join(map(str, pending[:20]))} are not reviewed yet: "
                       "accept or reject every proposal first", code="not_reviewed")
    accepted = [p for p in current["proposals"] if p["decision"] == "accepted"]
    writes: list[tuple[str, str, Any]] = []
    creates: list[bool] = []
    now = datetime.now(UTC).isoformat()
    for p in accepted:
        if p["person_id"] is None:
            writes.append(("people", f"{batch_id}-{p['row_no']}", {
                "tenant_id": principal.tenant_id, "owner_id": principal.user_id,
                "team_id": principal.team_id, "created_at": now, **p["fields"]}))
            creates.append(True)
        else:
            writes.append(("people", p["person_id"], _fill(p["fields"])))
            creates.append(False)
    report = {"batch_id": batch_id, "dry_run": dry_run,
              "create": sum(creates), "merge": len(creates) - sum(creates),
              "rejected": len(current["proposals"]) - len(accepted)}
    if dry_run:
        return report
    if writes and all(creates):  # only new people: the batched path, still one transaction
        await create_many(hub.writer, principal, writes)
    elif writes:
        await hub.writer.write_many(principal, writes, create=creates)
    await hub.storage.imports.committed(
        principal.tenant_id, batch_id, principal.user_id,
        [(p["row_no"], w[1]) for p, w in zip(accepted, writes, strict=True)])
    return report


def _fill(fields: dict[str, Any]) -> Any:
    """A merge as a function of the person as committed: only their empty fields and new
    tags, whatever changed since the review."""

    def values(person: dict[str, Any]) -> dict[str, Any]:
        out = {k: fields[k] for k in MERGED_FIELDS if fields.get(k) and not person.get(k)}
        tags = set(fields.get("tags") or ())
        if tags - set(person.get("tags") or ()):
            out["tags"] = sorted(set(person.get("tags") or ()) | tags)
        return out

    return values
