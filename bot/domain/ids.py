"""Typed identifiers shared by the core, the store and the adapters."""

from __future__ import annotations

from typing import NewType

CommunityId = NewType("CommunityId", int)
MemberId = NewType("MemberId", int)
AccountId = NewType("AccountId", int)
IdeaId = NewType("IdeaId", int)
RequestId = NewType("RequestId", int)
