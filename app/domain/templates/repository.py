"""The statements on `templates`, a team's rows only (row-level security scopes them to the request's team)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Row, text

from app.db.executor import Executor

__all__ = ["delete_template", "find_template", "insert_template", "publish_template", "team_templates",
           "update_template"]

_COLUMNS = ("id, team_id, name, alias, draft, draft_version_id, published, published_version_id, published_at, "
            "created_at, updated_at")
# An alias may look like another template's id: the id wins.
_FIND = text(f"SELECT {_COLUMNS} FROM templates WHERE team_id = :team_id AND (id::text = :ref OR alias = :ref) "
             "ORDER BY (id::text = :ref) DESC LIMIT 1")
_LIST = text(f"SELECT {_COLUMNS} FROM templates WHERE team_id = :team_id ORDER BY created_at DESC, id DESC")
_INSERT = text("""
INSERT INTO templates (id, team_id, name, alias, draft, draft_version_id)
VALUES (:id, :team_id, :name, :alias, CAST(:draft AS jsonb), :version)
""")
_UPDATE = text("""
UPDATE templates SET name = :name, alias = :alias, draft = CAST(:draft AS jsonb), draft_version_id = :version,
    updated_at = now()
WHERE id = :id
""")
_PUBLISH = text("""
UPDATE templates SET published = draft, published_version_id = draft_version_id, published_at = now(),
    updated_at = now()
WHERE id = :id
""")
_DELETE = text("DELETE FROM templates WHERE id = :id")


async def find_template(db: Executor, team_id: uuid.UUID, ref: str, *, lock: bool = False) -> Row[Any] | None:
    """The team's template with this id or alias."""
    statement = _FIND.text + (" FOR UPDATE" if lock else "")
    return (await db.execute(text(statement), {"team_id": team_id, "ref": ref})).first()


async def team_templates(db: Executor, team_id: uuid.UUID) -> list[Row[Any]]:
    """The team's templates, newest first."""
    return list((await db.execute(_LIST, {"team_id": team_id})).all())


async def insert_template(db: Executor, template_id: uuid.UUID, team_id: uuid.UUID, name: str, alias: str | None,
                          draft: dict[str, Any]) -> None:
    """Store a new, unpublished template."""
    await db.execute(_INSERT, {"id": template_id, "team_id": team_id, "name": name, "alias": alias,
                               "draft": json.dumps(draft), "version": uuid.uuid4()})


async def update_template(db: Executor, template_id: uuid.UUID, name: str, alias: str | None,
                          draft: dict[str, Any]) -> None:
    """Replace the draft (a new version id); what was published stays."""
    await db.execute(_UPDATE, {"id": template_id, "name": name, "alias": alias, "draft": json.dumps(draft),
                               "version": uuid.uuid4()})


async def publish_template(db: Executor, template_id: uuid.UUID) -> None:
    """Make the draft the version that sends."""
    await db.execute(_PUBLISH, {"id": template_id})


async def delete_template(db: Executor, template_id: uuid.UUID) -> None:
    """Remove a template."""
    await db.execute(_DELETE, {"id": template_id})
