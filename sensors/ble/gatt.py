"""Small bleak helpers the third-party profiles share (subscribe with the profile's notify handler, stop quietly)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Awaitable

from bleak.exc import BleakError

from sensors.ble.profile import NotifyHandler

if TYPE_CHECKING:
    from bleak import BleakClient

log = logging.getLogger(__name__)


async def subscribe(client: "BleakClient", char_uuid: str, on_notify: NotifyHandler) -> None:
    """Start notifications on `char_uuid`, handing ``(char_uuid, data)`` to `on_notify`."""
    uuid = char_uuid.lower()
    await client.start_notify(uuid, lambda _char, data: on_notify(uuid, data))


async def best_effort(step: Awaitable[object], what: str) -> None:
    """Await one stop step; a device that has already gone away is not an error while stopping."""
    try:
        await step
    except (BleakError, OSError, EOFError, asyncio.TimeoutError) as exc:
        log.debug("stop step %s failed: %r", what, exc)
