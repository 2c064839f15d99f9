"""The relay's request guard: what every request passes before a handler sees it.

A relay on a laptop shares a machine with a web browser, and any page the browser shows can
send requests to loopback. So, before routing reaches a handler:

- **Host.** Only a ``Host`` that names the relay is answered: loopback names (``localhost``,
  ``*.localhost``), IP literals, and the names given with ``--allow-host``. A DNS-rebinding page
  talks to the relay under its own name (``evil.example``), so it is refused, on every path.
  An IP literal cannot be a rebinding: the page's origin is then that IP itself.
- **Browser signals.** A request carrying an ``Origin`` that is not in ``--allow-origin``, or
  ``Sec-Fetch-Site: cross-site|same-site``, comes from a web page on another site: refused with
  403, on every path, websocket upgrades included. Webhook senders and ``hook`` send neither.
- **OPTIONS** (a CORS preflight) is answered 204 here, never routed to ingest and stored; it
  carries ``Access-Control-Allow-*`` only for an allowed origin.

Tokens are checked by the handlers (``Relay._authorize``); health and ingest need none.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger("hook.relay.guard")

#: Sec-Fetch-Site values that mean "a page on another origin sent this" (Fetch Metadata).
CROSS_SITE = frozenset({"cross-site", "same-site"})


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """Names and browser origins the relay answers beyond loopback (``--allow-host/-origin``)."""

    #: Host names (no port) the relay answers as, e.g. its public name behind a proxy.
    allow_hosts: tuple[str, ...] = ()
    #: Browser origins (``scheme://host[:port]``) allowed to call the API and the stream.
    allow_origins: tuple[str, ...] = ()

    def host_allowed(self, host: str | None) -> bool:
        """Does this ``Host`` header name the relay? (The port is ignored.)"""
        if host is None:
            return True  # HTTP/1.0 without Host: not a browser, which always sends one
        return _host_verdict(host, self.allow_hosts)

    def origin_allowed(self, origin: str) -> bool:
        """Is this browser origin one of ``--allow-origin``?"""
        wanted = origin.strip().rstrip("/").lower()
        return any(wanted == allowed.strip().rstrip("/").lower() for allowed in self.allow_origins)


# Every request asks, and a relay's clients send the same few Host values: parsing one as an IP
# address each time was a visible share of an ingest's CPU. Bounded, so varied Hosts cost memory
# for at most this many verdicts.
@functools.lru_cache(maxsize=256)
def _host_verdict(host: str, allow_hosts: tuple[str, ...]) -> bool:
    """``GuardSettings.host_allowed`` for a ``Host`` header value that is present."""
    name = host_name(host)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name in {allowed.rstrip(".").lower() for allowed in allow_hosts}


def host_name(host: str) -> str:
    """The name in a ``Host`` header, without the port, brackets or a trailing dot, lower-cased."""
    text = host.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text[1:]
    name, colon, port = text.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        text = name
    return text.rstrip(".")


def guard_middleware(settings: GuardSettings) -> Middleware:
    """The aiohttp middleware enforcing ``settings`` (first in the chain)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not settings.host_allowed(request.headers.get("Host")):
            return _refuse(
                request,
                421,
                f"this relay does not answer as {host_name(request.headers['Host'])!r}",
                "address it as 127.0.0.1 or localhost; a team relay's public name must be "
                "allowed with `hook relay serve --allow-host NAME`",
            )
        origin = request.headers.get("Origin")
        allowed = origin is not None and settings.origin_allowed(origin)
        if request.method == "OPTIONS":
            return _preflight(request, origin if allowed else None)
        if origin is not None and not allowed:
            return _refuse(
                request,
                403,
                f"requests from web pages are refused (Origin {origin!r})",
                "hook's API is not for browsers; allow a trusted page's origin with "
                "`hook relay serve --allow-origin ORIGIN`",
            )
        site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
        if site in CROSS_SITE and not allowed:
            return _refuse(
                request,
                403,
                f"requests from web pages are refused (Sec-Fetch-Site: {site})",
                "webhook senders send no Sec-Fetch-Site; allow a trusted page's origin with "
                "`hook relay serve --allow-origin ORIGIN`",
            )
        response = await handler(request)
        if allowed and origin is not None and not response.prepared:
            # An allowed page may read the answer (a websocket was already upgraded: no need).
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    return middleware


def _preflight(request: web.Request, origin: str | None) -> web.Response:
    """204 for OPTIONS; CORS permission only for an allowed origin (otherwise the browser stops)."""
    response = web.Response(status=204)
    if origin is not None:
        requested = request.headers.get("Access-Control-Request-Headers")
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": requested or "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            }
        )
    return response


def _refuse(request: web.Request, status: int, message: str, hint: str) -> web.Response:
    # Debug only: refusals are routine on a public relay, and the log must not grow with them.
    log.debug("refused %s %s: %s", request.method, request.path, message)
    return web.json_response({"error": message, "hint": hint}, status=status)
