"""Small pieces shared by the tutorial tests.

The tutorial's consumers call ``channel.start_consuming()``, which never
returns. The tests keep the tutorial's callbacks but pump the connection with
``process_data_events(time_limit=...)`` until a condition holds or a deadline
passes, so that a misbehaving broker makes a test fail instead of hang.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pika
import pika.exceptions
import pytest

# Default bound on waiting for something the broker should do promptly.
WAIT_S = 5.0
# Slice of time given to pika per pump while waiting.
PUMP_S = 0.05


def wait_until(condition, what: str, pump=(), timeout: float = WAIT_S) -> None:
    """Pump the ``pump`` connections until ``condition()`` is true.

    Fails the test with ``what`` in the message once ``timeout`` has passed.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        if pump:
            for connection in pump:
                connection.process_data_events(time_limit=PUMP_S)
        else:
            time.sleep(PUMP_S)


@dataclass
class Delivery:
    routing_key: str
    body: bytes
    redelivered: bool
    delivery_tag: int
    properties: pika.BasicProperties


class Inbox:
    """A consumer whose callback records every delivery it gets.

    With ``ack=True`` it acks each message in the callback, like the
    tutorial's consumers from section 6 on; otherwise it leaves them alone.
    """

    def __init__(self, channel, queue: str, auto_ack: bool, ack: bool = False):
        self.channel = channel
        self.queue = queue
        self.ack = ack
        self.deliveries: list[Delivery] = []
        channel.basic_consume(queue=queue, on_message_callback=self._on_message, auto_ack=auto_ack)

    def _on_message(self, ch, method, properties, body):
        self.deliveries.append(
            Delivery(method.routing_key, body, method.redelivered, method.delivery_tag, properties)
        )
        if self.ack:
            ch.basic_ack(delivery_tag=method.delivery_tag)

    @property
    def bodies(self) -> list[bytes]:
        return [d.body for d in self.deliveries]

    def receive(self, count: int, timeout: float = WAIT_S) -> list[Delivery]:
        """Wait until at least ``count`` deliveries have arrived; return them all."""
        wait_until(
            lambda: len(self.deliveries) >= count,
            f"{count} message(s) on {self.queue!r} (got {self.bodies!r})",
            pump=[self.channel.connection],
            timeout=timeout,
        )
        return self.deliveries


def queue_counts(connection, queue: str) -> tuple[int, int]:
    """(message_count, consumer_count) from a passive declare on a new channel.

    message_count counts only messages ready for delivery, not those
    delivered and waiting for an ack.
    """
    channel = connection.channel()
    ok = channel.queue_declare(queue=queue, passive=True)
    channel.close()
    return ok.method.message_count, ok.method.consumer_count


def channel_error(action) -> pika.exceptions.ChannelClosedByBroker:
    """Run ``action()``, which must make the broker close the channel."""
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        action()
    return caught.value


def queue_exists(connection, queue: str) -> bool:
    """Whether a passive declare finds ``queue``.

    A queue that exists but is exclusive to another connection answers
    405 RESOURCE_LOCKED, which still means it exists.
    """
    channel = connection.channel()
    try:
        channel.queue_declare(queue=queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        if exc.reply_code == 405:
            return True
        raise
    channel.close()
    return True


def subscribe(connection, exchange: str, exchange_type: str, binding_keys=("",)):
    """The tutorial's subscriber (sections 7-9) up to its ``start_consuming``.

    Declares the exchange, a server-named exclusive queue bound with each of
    ``binding_keys``, and an auto-ack consumer on it.
    """
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type=exchange_type)
    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue
    for key in binding_keys:
        channel.queue_bind(exchange=exchange, queue=queue_name, routing_key=key)
    return Inbox(channel, queue_name, auto_ack=True)


def publish_to_exchange(connection, exchange: str, exchange_type: str, messages) -> None:
    """The tutorial's publisher: declare the exchange, publish (key, body) pairs."""
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type=exchange_type)
    for routing_key, body in messages:
        channel.basic_publish(exchange=exchange, routing_key=routing_key, body=body)
    connection.close()
