"""Text the database cannot store is the client's fault (422); other data errors stay 500."""

from __future__ import annotations

import falcon.asgi
import psycopg
import pytest
from falcon import testing
from taskflow_core.db import install_outage_handler, is_unstorable_input
from taskflow_core.errors import install_error_handlers


class Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raise self.error


def _answer(error: Exception) -> testing.Result:
    app = falcon.asgi.App()
    install_error_handlers(app)
    install_outage_handler(app)
    app.add_route("/x", Raising(error))
    return testing.TestClient(app).simulate_get("/x")


@pytest.mark.parametrize(
    "error",
    [
        psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
        psycopg.errors.UntranslatableCharacter("unsupported Unicode escape sequence"),
        psycopg.errors.CharacterNotInRepertoire("invalid byte sequence"),
    ],
)
def test_unstorable_text_is_a_422(error: Exception) -> None:
    assert is_unstorable_input(error)
    result = _answer(error)
    assert result.status_code == 422
    assert result.json["error"] == "Input contains characters that cannot be stored"


def test_other_data_errors_are_still_server_errors() -> None:
    error = psycopg.errors.DivisionByZero("division by zero")
    assert not is_unstorable_input(error)
    result = _answer(error)
    assert result.status_code == 500
    assert result.json["error"] == "Internal server error"
