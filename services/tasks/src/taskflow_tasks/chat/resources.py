"""``POST /chatkit``: the web dashboard's chat (reference §1.9). Chat is not part of this API, so
the route answers what the API we replace answers when chat is not configured: 503 with its
message, before any header is looked at (the dashboard shows it instead of a 404)."""

from __future__ import annotations

from falcon.asgi import Request, Response
from taskflow_core.errors import APIError
from taskflow_core.routing import Operation, Route

NOT_CONFIGURED = "ChatKit server not initialized. Check CHATKIT_DATABASE_URL configuration."


class ChatKitResource:
    async def on_post(self, req: Request, resp: Response) -> None:
        raise APIError(503, NOT_CONFIGURED)


_CHATKIT = Operation(
    "POST",
    "Chat (not configured)",
    "chat",
    operation_id="postChatKit",
    public=True,
    status=503,
    errors=(503,),
    description="Always 503 `" + NOT_CONFIGURED + "`: chat is not part of this API; the route "
    "exists so the dashboard gets the answer the API it replaces gives when chat is off.",
)


def chat_routes() -> list[Route]:
    return [Route("/chatkit", ChatKitResource(), (_CHATKIT,))]
