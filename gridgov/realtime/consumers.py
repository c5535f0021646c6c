"""The one WebSocket of the platform: /ws/v1/events/. Thin: authenticate, join the groups the
user's jurisdiction allows, relay events, replay what a reconnecting client missed. It never
writes; field actions go through the REST API.

Protocol (JSON text frames):

  server → {"type": "hello", "user": 7, "groups": [...], "heartbeat": 20}   once accepted
  server → {"type": "event", "id": 123, "group": "user.7", "event": "appeal.dispatched",
            "payload": {...}, "created_at": "..."}
  client → {"type": "resume", "last_id": 120}   (or connect with ?last_id=120)
  server → the missed events (id > 120, in id order), then
           {"type": "resumed", "last_id": <highest id read>, "count": <sent>, "complete": true}
           complete=false: the gap was too long or partly purged; reload state over REST.
  server → {"type": "ping"} every `heartbeat` s; client → {"type": "ping"} gets {"type": "pong"}
  close 4401: not authenticated, or the token expired / was revoked.

No event is sent twice on one connection, and none is skipped: live events that arrive while a
replay runs are held back and sent after it, minus those the replay already sent. Resuming
with ?last_id= at connect keeps the stream in id order from the first frame; a resume message
later on fills the gap behind the live events already received. Events the channel layer
dropped (over capacity, expired, lost in a Redis reconnect) are found by a sweep of the outbox
once a heartbeat, so a connection misses nothing committed after it opened.
"""

import asyncio
import heapq
import itertools
import logging
from collections import deque
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from .auth import SUBPROTOCOL
from .broadcast import groups_for
from .models import OutboxEvent

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
REPLAY_PAGE = 500
SWEEP_GRACE_S = 5.0


def outbox_after(groups, after_id, limit, settled=False):
    """Events of these groups with id > after_id, in id order, as client frames. `settled`: only
    those older than SWEEP_GRACE_S, which have had their chance to arrive live (ids follow
    commit order, and so do the insert times, so this is a prefix of the answer)."""
    rows = OutboxEvent.objects.filter(group__in=groups, id__gt=after_id)
    if settled:
        rows = rows.filter(created_at__lte=timezone.now() - timedelta(seconds=SWEEP_GRACE_S))
    return [row.as_frame() for row in rows.order_by("id")[:limit]]


def outbox_last_id():
    return OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def connect_state(user):
    """(groups, last outbox id) in one trip to the database thread. The id is read before the
    groups are joined: whatever commits after it arrives live or, failing that, by the sweep."""
    return groups_for(user), outbox_last_id()


def outbox_reaches_back_to(after_id):
    """False when events after `after_id` may have been purged (it is older than the outbox)."""
    return after_id <= 0 or OutboxEvent.objects.filter(id__lte=after_id).exists()


class SeenIds:
    """Ids already sent on this connection; keeps the most recent `size`, and treats anything at
    or below the oldest id forgotten as seen."""

    def __init__(self, size=20_000):
        self.ids: set[Any] = set()
        self.order: deque[Any] = deque()
        self.size, self.floor = size, 0

    def add(self, event_id):
        if event_id <= self.floor or event_id in self.ids:
            return False
        self.ids.add(event_id)
        self.order.append(event_id)
        if len(self.order) > self.size:
            old = self.order.popleft()
            self.ids.discard(old)
            self.floor = max(self.floor, old)
        return True


class EventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.user = self.scope.get("user")
        self.auth_token = self.scope.get("auth_token")
        self.seen = SeenIds()
        self.held = None  # a heap while a replay runs: live events wait in it, by id
        self.arrival = itertools.count()
        self.replay_task = self.heartbeat_task = None
        offered = self.scope.get("subprotocols") or []
        # Accept before closing: a close before the handshake reaches the client as HTTP 403,
        # without the 4401 that tells the app to log in again.
        await self.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        if self.user is None or not self.user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups, self.sweep_cursor = await database_sync_to_async(connect_state)(self.user)
        self.groups = groups  # websocket_disconnect leaves them, even if it comes mid-way
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.heartbeat = float(settings.REALTIME_HEARTBEAT)
        await self.send_json({"type": "hello", "user": self.user.pk, "groups": groups, "heartbeat": self.heartbeat})
        self.heartbeat_task = asyncio.create_task(self.beat())
        last_id = self.query_last_id()
        if last_id is not None:
            self.start_replay(last_id)

    async def dispatch(self, message):
        # Channels' own dispatch first runs close_old_connections through sync_to_async: one hop
        # to the process's single database thread for every message, which caps a Daphne process
        # at a few hundred events a second. These handlers reach the database only through
        # database_sync_to_async, which closes stale connections itself.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def disconnect(self, code):
        for task in (getattr(self, "heartbeat_task", None), getattr(self, "replay_task", None)):
            if task is not None and not task.done():
                task.cancel()

    def query_last_id(self):
        values = parse_qs(self.scope.get("query_string", b"").decode("latin1")).get("last_id")
        if values and values[0].isdigit():
            return int(values[0])
        return None

    # --- client frames ----------------------------------------------------------------------
    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = await self.decode_json(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if not isinstance(content, dict):
            await self.send_json(
                {"type": "error", "code": "bad_frame", "detail": "需要 JSON 对象 / expected a JSON object"}
            )
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "resume":
            last_id = content.get("last_id")
            if not isinstance(last_id, int) or isinstance(last_id, bool) or last_id < 0:
                await self.send_json(
                    {
                        "type": "error",
                        "code": "bad_last_id",
                        "detail": "last_id 须为非负整数 / last_id must be a non-negative integer",
                    }
                )
            elif self.held is not None:
                await self.send_json(
                    {"type": "error", "code": "resume_in_progress", "detail": "正在补发 / a resume is already running"}
                )
            else:
                self.start_replay(last_id)
        else:
            await self.send_json({"type": "error", "code": "unknown_type", "detail": f"unknown type {kind!r}"})

    # --- channel layer messages ---------------------------------------------------------------
    async def outbox_event(self, message):
        event = message["event"]
        if self.held is not None:
            heapq.heappush(self.held, (event["id"], next(self.arrival), event))
        else:
            await self.deliver(event)

    async def session_revoke(self, message):
        keys = message.get("token_keys")
        if self.auth_token is not None and (keys is None or self.auth_token.token_key in keys):
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def deliver(self, event):
        if not self.seen.add(event["id"]):
            return False
        await self.send_json(event)
        return True

    # --- replay -----------------------------------------------------------------------------
    def start_replay(self, last_id):
        # Held from now: anything the replay's queries do not see arrives live, after them.
        self.held = []
        self.replay_task = asyncio.create_task(self.replay(last_id))

    async def replay(self, last_id):
        cursor, read, count, limit = last_id, 0, 0, settings.REALTIME_REPLAY_MAX
        complete = True
        try:
            while True:
                frames = await database_sync_to_async(outbox_after)(self.groups, cursor, min(REPLAY_PAGE, limit - read))
                for frame in frames:
                    count += await self.deliver(frame)
                    cursor = frame["id"]
                read += len(frames)
                if read >= limit:
                    complete = False
                    break
                if len(frames) < REPLAY_PAGE:
                    break
            complete = complete and await database_sync_to_async(outbox_reaches_back_to)(last_id)
            # Truncated: the client reloads over REST; the sweep must not trickle the rest in.
            self.sweep_cursor = max(
                self.sweep_cursor, cursor if complete else await database_sync_to_async(outbox_last_id)()
            )
            await self.send_json({"type": "resumed", "last_id": cursor, "count": count, "complete": complete})
        except asyncio.CancelledError:
            self.held = None  # the socket is gone
            raise
        except Exception:
            logger.exception("realtime: replay after %s failed for user %s", last_id, self.user.pk)
            await self.send_json({"type": "resumed", "last_id": cursor, "count": count, "complete": False})
        # Drain in id order; live events that arrive meanwhile join the heap, so none overtakes
        # an older held one. The emptiness check and `held = None` have no await between them.
        while self.held:
            await self.deliver(heapq.heappop(self.held)[2])
        self.held = None

    # --- heartbeat and sweep ------------------------------------------------------------------
    async def beat(self):
        expiry = getattr(self.auth_token, "expiry", None)
        while True:
            wait = self.heartbeat
            if expiry is not None:
                wait = min(wait, max((expiry - timezone.now()).total_seconds(), 0))
            await asyncio.sleep(wait)
            if expiry is not None and timezone.now() >= expiry:
                await self.close(code=CLOSE_UNAUTHENTICATED)
                return
            await self.sweep()
            await self.send_json({"type": "ping"})

    async def sweep(self):
        """Send what the channel layer lost. It may drop messages (a receiving process over
        CHANNEL_CAPACITY or past the 60 s expiry; the pub/sub layer during a Redis reconnect), so
        once a heartbeat the outbox is read past the last id already checked and anything not
        yet sent on this connection goes out. One indexed query per connection per heartbeat."""
        if self.held is not None:
            return  # a replay is running and covers it
        try:
            while True:
                frames = await database_sync_to_async(outbox_after)(self.groups, self.sweep_cursor, REPLAY_PAGE, True)
                missed = 0
                for frame in frames:
                    missed += await self.deliver(frame)
                    self.sweep_cursor = frame["id"]
                if missed:
                    logger.warning(
                        "realtime: %d event(s) for user %s missed live, sent by the sweep", missed, self.user.pk
                    )
                if len(frames) < REPLAY_PAGE:
                    return
        except Exception:
            logger.exception("realtime: sweep failed for user %s", self.user.pk)
