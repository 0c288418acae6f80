# SPDX-License-Identifier: Apache-2.0
"""Hostile clients for a Cloister server on loopback, each kind from its own source addresses
(127.0.0.2 and up: the per-address cap applies to each, as it would to attackers on the
internet).

- Attack: slow-loris TCP connections, each dripping one byte of a TLS ClientHello every `drip`
  seconds and reconnecting `pause` seconds after the server closes it, run by one asyncio loop in
  a thread;
- hold(): clients that speak aTLS without evidence (tests/tools/atls-hold): large bodies held
  open, or POST /v1/init with wrong master secrets, over and over."""
import asyncio
import json
import os
import subprocess
import threading

# The first bytes of a TLS 1.3 ClientHello record (type 22, version 3.1, a length that never
# comes): a server must wait for more.
CLIENT_HELLO_START = bytes.fromhex("160301020001") + os.urandom(64)


class Attack:
    def __init__(self, port, slow_loris=0, drip=2.0, pause=1.0, first_address=2):
        self.port, self.drip, self.pause = port, drip, pause
        # At most 50 per source address (the server's cap is 64 per address).
        self.plan = [f"127.0.0.{first_address + i // 50}" for i in range(slow_loris)]
        self.connected = self.closed_by_server = 0
        self.errors = {}
        self._stop = None
        self._thread = None
        self._loop = None

    async def _one(self, source):
        while not self._stop.is_set():
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", self.port, local_addr=(source, 0)), 20)
                self.connected += 1
                for b in CLIENT_HELLO_START:
                    writer.write(bytes([b]))
                    await writer.drain()
                    if await self._closed(reader, self.drip):
                        self.closed_by_server += 1
                        break
            except (OSError, asyncio.TimeoutError) as e:
                key = type(e).__name__
                self.errors[key] = self.errors.get(key, 0) + 1
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(self.pause)

    async def _closed(self, reader, seconds):
        """Waits up to seconds; True if the server closed the connection meanwhile."""
        try:
            data = await asyncio.wait_for(reader.read(4096), seconds)
            return data == b""
        except asyncio.TimeoutError:
            return False

    async def _main(self):
        self._stop = asyncio.Event()
        self._ready.set()
        tasks = [asyncio.ensure_future(self._one(source)) for source in self.plan]
        await self._stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self):
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),),
                                        daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)


def hold(tool, policy, cid, port, mode, source, count, seconds):
    """Starts tests/tools/atls-hold; .communicate() gives its JSON counts."""
    return subprocess.Popen([str(tool), "--policy", str(policy), "--cluster-id", cid, "--port",
                             str(port), "--source", source, "--count", str(count), "--mode", mode,
                             "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)


def counts(proc):
    out, _ = proc.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])
