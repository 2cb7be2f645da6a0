"""Handles, names and slugs of provisioned workers and Default projects."""

from __future__ import annotations

import re

import pytest
from taskflow_tasks.callers import naming

HANDLE = re.compile(r"^@[a-z0-9_-]+$")


@pytest.mark.parametrize(
    ("email", "sub", "expected"),
    [
        ("Alice.Smith@example.com", "sub-1", "@alice-smith"),
        ("bob_jones@example.com", "sub-1", "@bob-jones"),
        ("carol+tag@example.com", "sub-1", "@caroltag"),  # '+' cannot be in a handle
        (None, "ABCDEFGH-123", "@abcdefgh"),
        ("+++@example.com", "Xy.z", "@xy-z"),
        (None, "!!!", "@user"),
    ],
)
def test_human_handle_base(email: str | None, sub: str, expected: str) -> None:
    handle = naming.human_handle_base(email, sub)
    assert handle == expected
    assert HANDLE.match(handle)


def test_long_local_part_leaves_room_for_a_suffix() -> None:
    handle = naming.human_handle_base("a" * 80 + "@x.test", "s")
    assert len(naming.first_free(handle, {handle}, naming.HANDLE_MAX)) <= naming.HANDLE_MAX


def test_first_free_appends_the_smallest_free_suffix() -> None:
    assert naming.first_free("@al", set(), 50) == "@al"
    assert naming.first_free("@al", {"@al", "@al-1", "@al-3"}, 50) == "@al-2"
    assert naming.first_free("abc", {"abc"}, 4) == "ab-1"


def test_placeholder_agent_and_default_names() -> None:
    assert naming.placeholder_handle_base("Zed12345678") == "@user-zed12345"
    assert naming.placeholder_name("Zed12345678") == "User Zed12345"
    assert naming.agent_handle_base("Build Bot", "key-1") == "@build-bot"
    assert naming.agent_handle_base(None, "KEY_abcdef99") == "@agent-key-abcd"
    assert naming.default_project_slug("AbC_dEf9xyz") == "default-abcdef9"
    assert naming.default_project_slug("________") == "default"
    assert naming.human_name(None, "a@b.c", "sub") == "a@b.c"
    assert naming.human_name("  ", None, "sub") == "sub"
    assert len(naming.human_name("n" * 300, None, "s")) == 200


def test_import_claim_email() -> None:
    assert naming.import_claim_email("Bob.Smith@corp.test", True) == "Bob.Smith@corp.test"
    # Only an IdP that says "verified" (the JSON true) lets a login claim by its email.
    for unverified in (None, False, "true", 1):
        assert naming.import_claim_email("bob@corp.test", unverified) is None
    assert naming.import_claim_email(None, True) is None
    assert naming.import_claim_email("", True) is None
