"""A reference Medius-profile peripheral on Bumble: streams a sample generator on a sample clock.

Pacing follows the spec's device rules: packets are due at ``(S + 1)·n / fs`` seconds of *sample time* after
START; each wake-up sends every packet that is due, so scheduling jitter never accumulates into drift.
``speed`` scales sample time to wall time (1 = real time); ``speed=None`` sends each packet as soon as the
radio buffer has room, so tests run 60 s of samples in a few seconds without loss. Every
packet produced gets a sequence number, sent or not (no subscriber, link down), and the peripheral counts
the samples it could not deliver (`samples_unsent`), which is what a host must record as the gap.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Sequence

import numpy as np

from sensors.ble import medius as mp
from sensors.virtual.peripheral import Characteristic, CharacteristicValue, Service, VirtualPeripheral

#: ``generator(first_index, n_samples) -> (n_samples, n_channels)`` integer counts for those sample indices.
SampleGenerator = Callable[[int, int], np.ndarray]

_P = Characteristic.Properties


def ramp_generator(n_channels: int, ramp_channel: int = 0) -> SampleGenerator:
    """Column ``ramp_channel`` carries the sample index as int16 (wrapping); the others a fixed pattern."""

    def generate(first_index: int, n_samples: int) -> np.ndarray:
        idx = np.arange(first_index, first_index + n_samples, dtype=np.int64)
        out = np.empty((n_samples, n_channels), dtype=np.int16)
        for c in range(n_channels):
            out[:, c] = ((idx * (c + 3)) % 4001 - 2000).astype(np.int16)
        out[:, ramp_channel] = (idx % 65536).astype(np.uint16).view(np.int16)
        return out

    return generate


class MediusPeripheral(VirtualPeripheral):
    """Virtual Medius sEMG board.

    Parameters
    ----------
    channels : sequence of MediusChannel
        Channel descriptions put in Info.
    generator : SampleGenerator
        Produces the counts of every sample index.
    fs_hz : int
        Initial sample rate (SET_RATE can change it while stopped).
    speed : float or None
        Wall-clock speed-up of the sample clock (1.0 = real time). None: no clock, each packet goes out as soon
        as the radio buffer has room (lossless by construction; tests run 60 s of samples in seconds).
    tx_buffer_fragments : int
        Radio buffer, in 27-byte link fragments; on the clock, a packet that does not fit is dropped.
    packet_loss, seed : float, int
        Fraction of packets lost on the air (numbered but never sent), drawn from a generator seeded by ``seed``.
    name, max_mtu
        As for `VirtualPeripheral`.
    battery_mv : int
        Reported battery voltage.
    """

    def __init__(
        self,
        channels: Sequence[mp.MediusChannel],
        generator: SampleGenerator,
        *,
        fs_hz: int = 2000,
        speed: float | None = 1.0,
        tx_buffer_fragments: int = 512,
        packet_loss: float = 0.0,
        seed: int = 0,
        name: str = "Medius-EMG",
        max_mtu: int = 247,
        battery_mv: int = 3900,
        adc_bits: int = 12,
    ) -> None:
        super().__init__(name, [mp.SERVICE_UUID], max_mtu=max_mtu)
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be positive or None, got {speed}")
        self.channels = tuple(channels)
        self.generator = generator
        self.fs_hz = int(fs_hz)
        self.speed = None if speed is None else float(speed)
        self.tx_buffer_fragments = int(tx_buffer_fragments)
        self.battery_mv = int(battery_mv)
        self.adc_bits = int(adc_bits)
        self.streaming = False
        self.packets_produced = 0
        self.samples_unsent = 0  # per channel: produced but never sent (the host's gaps)
        self.unsent_packets: list[int] = []  # their packet numbers (unwrapped seq), for exact checks
        self.identify_count = 0
        self.clipped_samples = 0  # sample instants with a channel at an int16 rail, since START
        if not 0.0 <= packet_loss < 1.0:
            raise ValueError(f"packet_loss must be in [0, 1), got {packet_loss}")
        self.packet_loss = float(packet_loss)
        self._loss_rng = np.random.default_rng(seed)
        self._n = 0
        self._task: asyncio.Task | None = None
        self._pending_overrun = False
        self._link_down = False

    # -- GATT ----------------------------------------------------------------------------------------------
    def build_services(self) -> list[Service]:
        self.data_char = Characteristic(mp.DATA_UUID, _P.NOTIFY, Characteristic.READABLE, b"")
        self.info_char = Characteristic(mp.INFO_UUID, _P.READ, Characteristic.READABLE,
                                        CharacteristicValue(read=lambda conn: self.info(conn.att_mtu).to_json()))
        self.control_char = Characteristic(mp.CONTROL_UUID, _P.WRITE | _P.INDICATE, Characteristic.WRITEABLE,
                                           CharacteristicValue(write=self._on_control))
        self.status_char = Characteristic(mp.STATUS_UUID, _P.READ | _P.NOTIFY, Characteristic.READABLE,
                                          CharacteristicValue(read=lambda conn: self.status_bytes()))
        self.battery_char = Characteristic(mp.BATTERY_LEVEL_UUID, _P.READ | _P.NOTIFY, Characteristic.READABLE,
                                           CharacteristicValue(read=lambda conn: bytes([self.battery_percent()])))
        return [
            Service(mp.SERVICE_UUID, [self.data_char, self.info_char, self.control_char, self.status_char]),
            Service(mp.BATTERY_SERVICE_UUID, [self.battery_char]),
        ]

    def info(self, mtu: int) -> mp.MediusInfo:
        """Info as the device reports it: ``n`` is fixed while streaming, else chosen from ``mtu``."""
        n = self._n if self.streaming else mp.samples_per_packet(mtu, len(self.channels))
        return mp.MediusInfo(fs_hz=self.fs_hz, samples_per_packet=n, channels=self.channels, adc_bits=self.adc_bits)

    def status_bytes(self) -> bytes:
        state = mp.STATE_STREAMING if self.streaming else mp.STATE_IDLE
        return mp.encode_status(self.battery_mv, self.samples_unsent, self.clipped_samples, state)

    def battery_percent(self) -> int:
        return int(np.clip((self.battery_mv - 3300) / 9, 0, 100))  # 3.3 V empty .. 4.2 V full (LiPo)

    def _on_control(self, connection, value: bytes) -> None:
        status = self._execute(bytes(value), connection.att_mtu)
        opcode = value[0] if value else 0
        # the reply goes out after the write response, as an indication
        asyncio.get_running_loop().create_task(self.indicate(self.control_char, bytes([mp.REPLY, opcode, status])))

    def _execute(self, raw: bytes, mtu: int) -> int:
        if not raw:
            return mp.STATUS_UNKNOWN_OPCODE
        op = raw[0]
        if op == mp.OP_START:
            if self.streaming:
                return mp.STATUS_INVALID_STATE
            if len(raw) != 1:
                return mp.STATUS_INVALID_PARAMETER
            n = mp.samples_per_packet(mtu, len(self.channels))
            if n < 1:
                return mp.STATUS_INVALID_PARAMETER
            self.start_streaming(n)
            return mp.STATUS_OK
        if op == mp.OP_STOP:
            if not self.streaming:
                return mp.STATUS_INVALID_STATE
            self.stop_streaming()
            return mp.STATUS_OK
        if op == mp.OP_SET_RATE:
            if len(raw) != 3 or int.from_bytes(raw[1:3], "little") == 0:
                return mp.STATUS_INVALID_PARAMETER
            if self.streaming:
                return mp.STATUS_INVALID_STATE
            self.fs_hz = int.from_bytes(raw[1:3], "little")
            return mp.STATUS_OK
        if op == mp.OP_IDENTIFY:
            self.identify_count += 1
            return mp.STATUS_OK
        return mp.STATUS_UNKNOWN_OPCODE

    # -- streaming -----------------------------------------------------------------------------------------
    def start_streaming(self, n: int) -> None:
        self._n = int(n)
        self.packets_produced = 0
        self.samples_unsent = 0
        self.unsent_packets = []
        self.clipped_samples = 0
        self.streaming = True
        self._task = asyncio.get_running_loop().create_task(self._stream())

    def stop_streaming(self) -> None:
        self.streaming = False
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def force_disconnect(self) -> None:
        """Cut the link like a radio dropout: packets from now on are unsent; those already queued arrive.

        Draining first makes ``samples_unsent`` exactly the gap the host must record (an in-flight packet lost
        with the link would be missing on the host without being counted here).
        """
        self._link_down = True
        try:
            await self.drain()
            await super().force_disconnect()
        finally:
            self._link_down = False

    async def detach(self) -> None:
        self.stop_streaming()
        await super().detach()

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        n, fs = self._n, float(self.fs_hz)
        status_every = max(1, int(round(fs / n)))  # ~1 s of sample time
        next_status_packet = 0
        t0 = loop.time()
        packet_wall_s = n / fs / self.speed if self.speed is not None else 0.0
        while self.streaming:
            if self.speed is None:  # flow-controlled: the next packet once the radio buffer has room
                while self.tx_backlog() > self.tx_buffer_fragments // 2 and self.streaming:
                    await asyncio.sleep(0.0005)
                due = self.packets_produced + 8
            else:
                due = int((loop.time() - t0) / packet_wall_s)
            burst = 0
            while self.packets_produced < due and burst < 64 and self.streaming:  # yield so the link drains
                await self._produce_packet(n)
                burst += 1
                if self.packets_produced >= next_status_packet:
                    next_status_packet += status_every
                    await self.notify(self.status_char, self.status_bytes())
            if self.speed is None or self.packets_produced < due:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(max(0.0, t0 + (self.packets_produced + 1) * packet_wall_s - loop.time()))

    async def _produce_packet(self, n: int) -> None:
        seq = self.packets_produced
        samples = self.generator(seq * n, n)
        self.packets_produced += 1
        flags = mp.FLAG_OVERRUN if self._pending_overrun else 0
        at_rail = np.any((samples == 32767) | (samples == -32768), axis=1)
        if at_rail.any():
            flags |= mp.FLAG_CLIPPED
            self.clipped_samples += int(at_rail.sum())
        lost_on_air = self.packet_loss > 0 and self._loss_rng.random() < self.packet_loss
        # a real radio buffer is finite: a packet that does not fit is dropped (and still numbered)
        room = self.tx_backlog() < self.tx_buffer_fragments
        packet = mp.encode_data_packet(seq, flags, samples)
        if room and not lost_on_air and not self._link_down and await self.notify(self.data_char, packet):
            self._pending_overrun = False
        else:
            self.samples_unsent += n
            self.unsent_packets.append(seq)
            self._pending_overrun = True
