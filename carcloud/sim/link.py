"""How a simulated car holds its link: session, subscription QoS and reconnect backoff.

Chosen by measurement (docs/benchmarks.md, "Reconnect storm after a restart"):

- **Clean sessions, QoS 0 subscriptions.** In nats-server every QoS 1 subscription
  of a persistent MQTT session is a JetStream consumer, restored one by one before
  the server listens again: two per car made a restart with 10,000 cars miss any
  sane start-up limit. The cloud does not need them: what a car must get (open
  commands, the desired twin) is durable in carcloud's database and sent again
  each time the car says it is online, which the car does only after it has
  subscribed. A command sent while the car is away therefore still reaches it.
- **Full jitter, capped at 15 s.** After a restart every car has failed a few
  times; a doubling delay without a low cap leaves some cars asleep for a minute
  after the platform is back, and a delay of 50-100 % of the ceiling makes them
  arrive in waves. A uniform draw between 0 and the ceiling spreads the storm;
  the cap bounds how long a car can sleep through a platform that is back.
"""

from __future__ import annotations

import random

from carcloud_agent.protocol.backoff import full_jitter

CLEAN_SESSION = True
CONTROL_QOS = 0
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 15.0


def reconnect_delay(failures: int, rng: random.Random) -> float:
    """Seconds to wait after `failures` failed connects in a row (full jitter, capped)."""
    return full_jitter(RECONNECT_MIN_S, RECONNECT_MAX_S, max(failures, 0), rng)
