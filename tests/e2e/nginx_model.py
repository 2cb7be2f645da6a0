"""A reading of the rendered nginx config: its server-level location blocks and nginx's rule for
choosing one (exact match, then the longest prefix unless a regex matches first; regexes in the
order written). Used to check the gateway against the route table without trusting the
renderer's own idea of what it wrote."""

from __future__ import annotations

import re
from dataclasses import dataclass

GATEWAY = "gateway"  # answered by nginx itself
HIDDEN = "hidden"  # 404 through the gateway


@dataclass(frozen=True)
class Location:
    modifier: str  # "=", "^~", "~", "~*" or "" (prefix)
    argument: str
    body: str

    @property
    def target(self) -> str:
        """The upstream service name, ``gateway`` or ``hidden``."""
        proxied = re.search(r"proxy_pass\s+http://tf_(\w+)\s*[;/]", self.body)
        if proxied:
            return proxied.group(1).replace("_", "-")
        if re.search(r"return\s+404\b", self.body):
            return HIDDEN
        return GATEWAY

    @property
    def protected(self) -> bool:
        return "auth_request " in self.body

    def matches(self, path: str) -> bool:
        if self.modifier == "=":
            return path == self.argument
        if self.modifier in ("", "^~"):
            return path.startswith(self.argument)
        flags = re.IGNORECASE if self.modifier == "~*" else 0
        return re.search(self.argument, path, flags) is not None


def _blocks(text: str, start: int) -> int:
    """Index just after the block whose ``{`` is at ``start``."""
    depth = 0
    quote = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if ch == "\\":
                continue
            if ch == quote and text[i - 1] != "\\":
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError("unbalanced braces in nginx config")


_LOCATION = re.compile(r"""^\s*location\s+(?:(=|\^~|~\*|~)\s+)?("[^"]*"|\S+)\s*\{""", re.M)


def parse_locations(config: str) -> list[Location]:
    """The locations of the (single) server block, in the order written; named and
    ``internal`` locations left out since clients cannot reach them."""
    # Whole-line comments may hold quotes or braces that would confuse the brace counting.
    text = "\n".join(line for line in config.splitlines() if not line.lstrip().startswith("#"))
    server = re.search(r"^\s*server\s*\{", text, re.M)
    if server is None:
        raise ValueError("no server block")
    end = _blocks(text, server.end() - 1)
    body = text[server.end() : end - 1]
    locations: list[Location] = []
    pos = 0
    while True:
        found = _LOCATION.search(body, pos)
        if found is None:
            break
        close = _blocks(body, found.end() - 1)
        inner = body[found.end() : close - 1]
        argument = found.group(2).strip('"')
        pos = close
        if argument.startswith("@") or re.search(r"^\s*internal;", inner, re.M):
            continue
        locations.append(Location(found.group(1) or "", argument, inner))
    return locations


def select(locations: list[Location], path: str) -> Location | None:
    """The location nginx uses for ``path`` (its documented selection order)."""
    for loc in locations:
        if loc.modifier == "=" and loc.matches(path):
            return loc
    prefixes = [loc for loc in locations if loc.modifier in ("", "^~") and loc.matches(path)]
    longest = max(prefixes, key=lambda loc: len(loc.argument), default=None)
    if longest is not None and longest.modifier == "^~":
        return longest
    for loc in locations:
        if loc.modifier in ("~", "~*") and loc.matches(path):
            return loc
    return longest
