"""Rules of projects, members and agents."""

from __future__ import annotations

import pytest
from taskflow_core.errors import APIError
from taskflow_tasks.members import rules as member_rules
from taskflow_tasks.projects import rules as project_rules
from taskflow_tasks.workers import rules as worker_rules
from taskflow_tasks.writes import diff


def test_field_changes_absent_unchanged_null_clears_only_nullable() -> None:
    current = {"name": "A", "description": "D"}
    assert diff.field_changes(current, {}) == {}
    assert diff.field_changes(current, {"name": None}) == {}
    assert diff.field_changes(current, {"name": "A"}) == {}
    assert diff.field_changes(current, {"description": None}, nullable=("description",)) == {
        "description": {"before": "D", "after": None}
    }
    assert diff.field_changes(current, {"name": "B", "description": "D"}) == {
        "name": {"before": "A", "after": "B"}
    }


@pytest.mark.parametrize(
    ("project", "force", "status", "message"),
    [
        ({"is_default": True, "task_count": 0}, True, 400, "Cannot delete default project"),
        (
            {"is_default": False, "task_count": 2},
            False,
            400,
            "Project has 2 tasks. Delete tasks first or use force=true",
        ),
    ],
)
def test_project_delete_refusals(project: dict, force: bool, status: int, message: str) -> None:
    with pytest.raises(APIError) as err:
        project_rules.check_project_deletable(project, force=force)
    assert (err.value.status, err.value.message) == (status, message)


def test_project_delete_allowed() -> None:
    project_rules.check_project_deletable({"is_default": False, "task_count": 2}, force=True)
    project_rules.check_project_deletable({"is_default": False, "task_count": 0}, force=False)


def test_member_target() -> None:
    assert member_rules.member_target("u1", None) == ("user", "u1")
    assert member_rules.member_target(None, 4) == ("agent", 4)
    for user_id, agent_id, message in (
        (None, None, "Provide either user_id or agent_id"),
        ("", 0, "Provide either user_id or agent_id"),
        ("u", 3, "Provide only one of user_id or agent_id"),
    ):
        with pytest.raises(APIError) as err:
            member_rules.member_target(user_id, agent_id)
        assert (err.value.status, err.value.message) == (400, message)


def test_owner_membership_is_not_removable() -> None:
    member_rules.check_member_removable({"role": "member"})
    with pytest.raises(APIError, match="Cannot remove project owner"):
        member_rules.check_member_removable({"role": "owner"})


def test_agent_delete_refusals() -> None:
    worker_rules.check_agent_deletable(0, 0)
    with pytest.raises(APIError) as membership:
        worker_rules.check_agent_deletable(1, 5)
    assert membership.value.status == 400
    with pytest.raises(APIError) as tasks:
        worker_rules.check_agent_deletable(0, 5)
    assert tasks.value.status == 409 and "created 5 task" in tasks.value.message


def test_search_description() -> None:
    assert member_rules.search_description("agent") == "AI Agent"
    assert member_rules.search_description("human") == "Team Member"


def test_which_agent_worker_a_caller_is() -> None:
    """An agent token's worker is its holder's, per OAuth client and tenant; a tf_ key's is the
    key's, per tenant (a shared MCP client never makes two people one worker)."""
    from taskflow_core.auth.identity import Identity
    from taskflow_tasks.callers.caller import AgentKey, agent_key

    def token(sub: str, tenant: str = "t", client: str | None = "mcp") -> AgentKey:
        return agent_key(Identity(sub=sub, tenant_id=tenant, actor_type="agent", client_id=client))

    assert token("alice") == AgentKey("t", sub="alice", client_id="mcp")
    assert (
        len({token("alice"), token("eve"), token("alice", "t2"), token("alice", client=None)}) == 4
    )
    assert token("alice").principal != token("eve").principal
    key = agent_key(
        Identity(sub="alice", tenant_id="t", actor_type="agent", client_id="k1", api_key_id="k1")
    )
    assert key == AgentKey("t", api_key_id="k1")
    assert key.principal != token("alice", client="k1").principal
    assert (key.label, token("alice").label, token("alice", client=None).label) == (
        "k1",
        "mcp",
        "alice",
    )
