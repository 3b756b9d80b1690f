"""Write imported conversations through the Store, all in one transaction, each source conversation once."""

from __future__ import annotations

from dataclasses import dataclass, field

from g3chat.core.importers.model import ImportedConversation, ImportSource
from g3chat.core.store import Store


@dataclass(frozen=True)
class ImportedChat:
    """One conversation the import added."""

    conversation_id: int
    source_id: str
    title: str
    messages: int
    branches: int  # leaves of the tree: 1 for a conversation that never forked

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.conversation_id,
            "source_id": self.source_id,
            "title": self.title,
            "messages": self.messages,
            "branches": self.branches,
        }


@dataclass
class ImportReport:
    kind: str
    label: str
    imported: list[ImportedChat] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # source ids an earlier import brought in

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.kind,
            "imported": [c.to_json() for c in self.imported],
            "skipped": len(self.skipped),
            "messages": sum(c.messages for c in self.imported),
        }


def write(store: Store, source: ImportSource) -> ImportReport:
    report = ImportReport(source.kind, source.label)
    with store.transaction():
        for conversation in source.conversations:
            if not conversation.messages:  # nothing anyone could read (only hidden or empty nodes)
                continue
            if store.imported_conversation(source.kind, conversation.source_id) is not None:
                report.skipped.append(conversation.source_id)
                continue
            report.imported.append(_write_one(store, source.kind, conversation))
    return report


def _write_one(store: Store, kind: str, conversation: ImportedConversation) -> ImportedChat:
    created = store.create_conversation(
        conversation.title,
        model=conversation.model,
        system_prompt=conversation.system_prompt,
        params=conversation.params,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at or conversation.created_at,
    )
    ids: dict[str, int] = {}
    for m in conversation.messages:  # a parent before its children
        stored = store.add_message(
            created.id,
            m.role,
            m.parts,
            parent_id=ids[m.parent] if m.parent is not None else None,
            model=m.model,
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            meta=m.meta,
            created_at=m.created_at or conversation.created_at,
        )
        ids[m.key] = stored.id
    store.set_current_leaf(
        created.id, ids.get(conversation.current or "", ids[conversation.messages[-1].key])
    )
    store.record_import(kind, conversation.source_id, created.id)
    parents = {m.parent for m in conversation.messages}
    return ImportedChat(
        conversation_id=created.id,
        source_id=conversation.source_id,
        title=conversation.title,
        messages=len(conversation.messages),
        branches=sum(1 for m in conversation.messages if m.key not in parents),
    )
