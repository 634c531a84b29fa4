"""The domain: record models, their CRDT layout, projections and SQL."""

from schema.crdt import FIELDS_ROOT, CrdtKind
from schema.projection import project, to_row
from schema.registry import COLLECTIONS, Collection, collection

__all__ = [
    "COLLECTIONS", "FIELDS_ROOT", "Collection", "CrdtKind", "collection", "project", "to_row",
]
