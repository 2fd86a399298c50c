"""What a user decides for the sync: which value a conflicted field takes, whether a proposed match is right.

A decision is recorded here and carried out by the next sync of the card, which is asked for at
once (a one-card sync request), so both sides hold the decided value within seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core import audit
from crm_core.audit import Actor
from crm_core.errors import Conflict, InvalidInput, NotFound
from crm_core.models import utcnow
from crm_core.onec.models import (
    ConflictStatus,
    LinkState,
    OnecConflict,
    OnecLink,
    OnecProposal,
    ProposalStatus,
)
from crm_core.onec.records import LIST_FIELDS, text
from crm_core.sync_requests import SyncRequests

Choice = Literal["hub", "onec", "value"]


async def resolve_conflict(
    session: AsyncSession, conflict_id: int, choice: Choice, value: Any, actor: Actor
) -> OnecConflict:
    conflict = await session.get(OnecConflict, conflict_id)
    if conflict is None:
        raise NotFound(f"conflict {conflict_id} not found")
    if conflict.status is not ConflictStatus.open:
        raise Conflict(f"conflict {conflict_id} is already {conflict.status.value}")
    if choice == "value":
        chosen = _chosen(conflict.field, value)
    else:
        chosen = conflict.hub_value if choice == "hub" else conflict.onec_value
    conflict.status, conflict.chosen_value = ConflictStatus.resolved, chosen
    conflict.resolved_by, conflict.resolved_at = actor.username, utcnow()
    audit.record(session, actor, "resolve", "onec_conflict", conflict.id, field=conflict.field, choice=choice,
                 value=chosen, client_id=conflict.client_id)  # fmt: skip
    await SyncRequests(session).request(conflict.client_id, actor.username)
    return conflict


def _chosen(name: str, value: Any) -> Any:
    """A typed value is checked here: the sync writes it to both sides, and a value the card
    cannot hold (a blank name, say) would be refused at every sync, the conflict never applied."""
    if name in LIST_FIELDS:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InvalidInput(f"{name} takes a list of strings", field="value")
        return value
    if name == "deleted":
        if not isinstance(value, bool):
            raise InvalidInput("deleted takes true or false", field="value")
        return value
    if name == "kind":
        if value not in ("legal", "person"):
            raise InvalidInput("kind takes 'legal' or 'person'", field="value")
        return value
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"{name} takes a string", field="value")
    cleaned = text(value)
    if name == "name" and cleaned is None:
        raise InvalidInput("the name cannot be blank", field="value")
    if name == "full_name":
        return cleaned or ""
    return cleaned


async def accept_proposal(session: AsyncSession, proposal_id: int, actor: Actor) -> OnecProposal:
    """Link the card and the 1C item; their fields are merged by the sync that follows at once."""
    proposal = await _open_proposal(session, proposal_id)
    taken = await session.scalar(
        select(OnecLink.ref_key).where(
            OnecLink.connection == proposal.connection,
            OnecLink.client_id == proposal.client_id,
        )
    )
    if taken is not None:
        raise Conflict(f"client {proposal.client_id} is already linked to 1C item {taken}")
    link = await session.scalar(
        select(OnecLink).where(OnecLink.connection == proposal.connection, OnecLink.ref_key == proposal.ref_key)
    )
    if link is None:
        link = OnecLink(connection=proposal.connection, ref_key=proposal.ref_key)
        session.add(link)
    elif link.state is LinkState.linked:
        raise Conflict(f"1C item {proposal.ref_key} is already linked to client {link.client_id}")
    link.client_id, link.state, link.base = proposal.client_id, LinkState.linked, {}
    link.onec_version, link.hub_version, link.detail, link.synced_at = None, None, None, utcnow()
    _decide(proposal, ProposalStatus.accepted, actor)
    await session.execute(
        update(OnecProposal)
        .where(
            OnecProposal.connection == proposal.connection,
            OnecProposal.status == ProposalStatus.open,
            (OnecProposal.ref_key == proposal.ref_key) | (OnecProposal.client_id == proposal.client_id),
            OnecProposal.id != proposal.id,
        )
        .values(status=ProposalStatus.rejected, decided_by=actor.username, decided_at=utcnow())
    )
    audit.record(session, actor, "accept", "onec_proposal", proposal.id, client_id=proposal.client_id,
                 ref_key=proposal.ref_key)  # fmt: skip
    await SyncRequests(session).request(proposal.client_id, actor.username)
    return proposal


async def reject_proposal(session: AsyncSession, proposal_id: int, actor: Actor) -> OnecProposal:
    """Not the same counterparty: the next sync brings the 1C item in as a card of its own."""
    proposal = await _open_proposal(session, proposal_id)
    _decide(proposal, ProposalStatus.rejected, actor)
    audit.record(session, actor, "reject", "onec_proposal", proposal.id, client_id=proposal.client_id,
                 ref_key=proposal.ref_key)  # fmt: skip
    return proposal


async def _open_proposal(session: AsyncSession, proposal_id: int) -> OnecProposal:
    proposal = await session.get(OnecProposal, proposal_id)
    if proposal is None:
        raise NotFound(f"proposal {proposal_id} not found")
    if proposal.status is not ProposalStatus.open:
        raise Conflict(f"proposal {proposal_id} is already {proposal.status.value}")
    return proposal


def _decide(proposal: OnecProposal, status: ProposalStatus, actor: Actor) -> None:
    proposal.status, proposal.decided_by, proposal.decided_at = status, actor.username, utcnow()
