"""The tutorial's pika programs (scenarios S1-S8 of SCENARIOS.md) as tests.

Each test plays the tutorial's producer and consumer programs with the same
pika calls, on separate connections where the tutorial runs separate
programs, and asserts what the scenario says must be observed. Names keep the
tutorial's ones as prefixes (see ``Names`` in conftest.py).
"""

from __future__ import annotations

import threading
import uuid

import pika
import pika.exceptions
import pytest

from conftest import close_quietly
from helpers import (
    WAIT_S,
    Inbox,
    channel_error,
    publish_to_exchange,
    queue_counts,
    queue_exists,
    subscribe,
    wait_until,
)

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


def publish_to_queue(connection, queue: str, bodies, durable=False, properties=None) -> None:
    """The tutorial's producer: declare the queue, publish through the
    default exchange with the queue's name as routing key, close."""
    channel = connection.channel()
    channel.queue_declare(queue=queue, durable=durable)
    for body in bodies:
        channel.basic_publish(exchange="", routing_key=queue, body=body, properties=properties)
    connection.close()


def keys_and_bodies(inbox: Inbox) -> list[tuple[str, bytes]]:
    return [(d.routing_key, d.body) for d in inbox.deliveries]


# --- S1: basic producer / consumer ------------------------------------------


def test_s1_consumer_gets_hello_world(connect, names):
    queue = names.queue("lqz")
    publish_to_queue(connect(), queue, ["hello world"])

    channel = connect().channel()
    # The consumer declares the queue again with the same arguments: fine,
    # and Declare-Ok reports the message waiting in it.
    ok = channel.queue_declare(queue=queue)
    assert (ok.method.queue, ok.method.message_count, ok.method.consumer_count) == (queue, 1, 0)

    inbox = Inbox(channel, queue, auto_ack=True)
    (delivery,) = inbox.receive(1)
    assert (delivery.routing_key, delivery.body, delivery.redelivered) == (queue, b"hello world", False)
    # auto_ack: nothing is left ready in the queue.
    assert queue_counts(channel.connection, queue) == (0, 1)


# --- S2: acknowledgements -----------------------------------------------------


def test_s2_unacked_message_stays_and_is_redelivered_when_consumer_closes(connect, names):
    queue = names.queue("lqz")
    publish_to_queue(connect(), queue, ["hello world"])

    # Section 4.2's consumer: auto_ack=False and its callback never acks.
    forgetful = connect()
    channel = forgetful.channel()
    channel.queue_declare(queue=queue)
    (first,) = Inbox(channel, queue, auto_ack=False).receive(1)
    assert (first.body, first.redelivered) == (b"hello world", False)

    # Delivered but unacked: not ready (message_count counts ready messages
    # only), and not given to anyone else while its consumer lives.
    observer = connect()
    assert queue_counts(observer, queue) == (0, 1)

    forgetful.close()
    wait_until(
        lambda: queue_counts(observer, queue) == (1, 0),
        "the unacked message to be ready again after its consumer's connection closed",
    )

    channel = connect().channel()
    (again,) = Inbox(channel, queue, auto_ack=False, ack=True).receive(1)
    assert (again.body, again.redelivered) == (b"hello world", True)


def test_s2_acked_message_is_removed(connect, names):
    queue = names.queue("lqz")
    publish_to_queue(connect(), queue, ["hello world"])

    careful = connect()
    channel = careful.channel()
    (delivery,) = Inbox(channel, queue, auto_ack=False, ack=True).receive(1)
    assert delivery.body == b"hello world"
    assert queue_counts(careful, queue) == (0, 1)
    careful.close()

    # Had the ack been lost, closing would have put the message back; a
    # marker published afterwards must be the only message left.
    publish_to_queue(connect(), queue, ["marker"])
    observer = connect()
    assert queue_counts(observer, queue) == (1, 0)
    inbox = Inbox(observer.channel(), queue, auto_ack=True)
    inbox.receive(1)
    assert inbox.bodies == [b"marker"]


# --- S3: durability -----------------------------------------------------------


def test_s3_durable_queue_and_persistent_message_survive_restart(broker, connect, names):
    durable = names.queue("lqz1")
    transient = names.queue("lqz")

    # Section 5.1's producer, plus a transient message in the durable queue.
    producer = connect()
    channel = producer.channel()
    channel.queue_declare(queue=durable, durable=True)
    channel.basic_publish(exchange="", routing_key=durable, body="111", properties=PERSISTENT)
    channel.basic_publish(exchange="", routing_key=durable, body="not kept", properties=TRANSIENT)
    # A non-durable queue, whose loss proves that the restart really happened.
    channel.queue_declare(queue=transient)
    producer.close()
    assert queue_counts(connect(), durable) == (2, 0)

    broker.restart()

    after = connect()
    assert not queue_exists(after, transient), "a non-durable queue survived the restart"
    assert queue_counts(after, durable) == (1, 0), "only the persistent message must survive"

    # The consumer declares the queue as it is, durable (section 6.2's fix).
    channel = after.channel()
    channel.queue_declare(queue=durable, durable=True)
    (delivery,) = Inbox(channel, durable, auto_ack=False, ack=True).receive(1)
    assert delivery.body == b"111"
    assert delivery.properties.delivery_mode == 2


def test_s3_redeclaring_durable_queue_as_non_durable_is_precondition_failed(connect, names):
    queue = names.queue("lqz1")
    producer_channel = connect().channel()
    producer_channel.queue_declare(queue=queue, durable=True)

    # Section 5.2's consumer declares the queue without durable=True.
    consumer = connect()
    consumer_channel = consumer.channel()
    error = channel_error(lambda: consumer_channel.queue_declare(queue=queue))
    assert error.reply_code == 406
    assert error.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{queue}' "
        "in vhost '/': received 'false' but current is 'true'"
    )

    # Only that channel is closed; the connection and other channels go on,
    # and the consumer works once it declares durable=True or passively.
    assert consumer_channel.is_closed and consumer.is_open and producer_channel.is_open
    channel = consumer.channel()
    assert channel.queue_declare(queue=queue, durable=True).method.queue == queue
    assert channel.queue_declare(queue=queue, passive=True).method.queue == queue


# --- S4: fair dispatch with prefetch ------------------------------------------


def consumer_with_prefetch_1(connection, queue: str, ack: bool) -> Inbox:
    """Section 6.2's consumer: basic_qos(prefetch_count=1), manual ack."""
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1)
    return Inbox(channel, queue, auto_ack=False, ack=ack)


def test_s4_busy_consumer_gets_nothing_until_it_acks(connect, names):
    queue = names.queue("lqz123")
    tasks = [f"task {i}".encode() for i in range(6)]
    publish_to_queue(connect(), queue, tasks, durable=True, properties=PERSISTENT)

    # The busy consumer takes the first task and sits on it.
    busy_connection = connect()
    busy = consumer_with_prefetch_1(busy_connection, queue, ack=False)
    busy.receive(1)

    # The idle one acks as it goes and takes every other task.
    idle_connection = connect()
    idle = consumer_with_prefetch_1(idle_connection, queue, ack=True)
    idle.receive(len(tasks) - 1)
    busy_connection.process_data_events(time_limit=0)
    assert busy.bodies == tasks[:1]
    assert idle.bodies == tasks[1:]
    assert queue_counts(idle_connection, queue) == (0, 2)

    # Once the busy consumer acks, it gets work again.
    idle_connection.close()
    busy.channel.basic_ack(delivery_tag=busy.deliveries[0].delivery_tag)
    publish_to_queue(connect(), queue, [b"task 6"], durable=True, properties=PERSISTENT)
    busy.receive(2)
    assert busy.bodies == tasks[:1] + [b"task 6"]


# --- S5: publish / subscribe (fanout) -------------------------------------------


def test_s5_every_subscriber_gets_every_message(connect, names):
    exchange = names.exchange("m1")
    subscribers = [subscribe(connect(), exchange, "fanout") for _ in range(2)]
    for inbox in subscribers:
        assert inbox.queue.startswith("amq.gen-"), inbox.queue
    assert subscribers[0].queue != subscribers[1].queue

    messages = [f"lqz nb {i}".encode() for i in range(3)]
    publish_to_exchange(connect(), exchange, "fanout", [("", body) for body in messages])
    for inbox in subscribers:
        inbox.receive(len(messages))
        assert inbox.bodies == messages


def test_s5_subscriber_queue_is_exclusive_and_goes_with_its_connection(connect, names):
    exchange = names.exchange("m1")
    leaving = subscribe(connect(), exchange, "fanout")
    staying = subscribe(connect(), exchange, "fanout")
    observer = connect()

    # Another connection may not use an exclusive queue.
    error = channel_error(lambda: observer.channel().queue_declare(queue=leaving.queue, passive=True))
    assert error.reply_code == 405
    assert error.reply_text.startswith(
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{leaving.queue}' in vhost '/'"
    )

    leaving.channel.connection.close()
    wait_until(
        lambda: not queue_exists(observer, leaving.queue),
        "the exclusive queue to be deleted after its connection closed",
    )
    error = channel_error(lambda: observer.channel().queue_declare(queue=leaving.queue, passive=True))
    assert (error.reply_code, error.reply_text) == (404, f"NOT_FOUND - no queue '{leaving.queue}' in vhost '/'")

    # The remaining subscriber is unaffected.
    assert queue_exists(observer, staying.queue)
    publish_to_exchange(connect(), exchange, "fanout", [("", "lqz nb")])
    staying.receive(1)
    assert staying.bodies == [b"lqz nb"]


# --- S6: routing (direct) -----------------------------------------------------


def test_s6_direct_exchange_routes_by_exact_key(connect, names):
    exchange = names.exchange("m2")
    subscriber1 = subscribe(connect(), exchange, "direct", ["nb", "bnb"])
    subscriber2 = subscribe(connect(), exchange, "direct", ["nb"])

    # Queues keep publish order, so a message wrongly routed to a subscriber
    # would arrive before the last one, which reaches both.
    publish_to_exchange(
        connect(),
        exchange,
        "direct",
        [("bnb", "lqz nb"), ("nobody", "unrouted"), ("nb", "for both")],
    )
    subscriber1.receive(2)
    subscriber2.receive(1)
    assert keys_and_bodies(subscriber1) == [("bnb", b"lqz nb"), ("nb", b"for both")]
    assert keys_and_bodies(subscriber2) == [("nb", b"for both")]


# --- S7: topics ---------------------------------------------------------------


def test_s7_topic_exchange_star_is_one_word_hash_is_any(connect, names):
    exchange = names.exchange("m3")
    hash_subscriber = subscribe(connect(), exchange, "topic", ["lqz.#"])
    star_subscriber = subscribe(connect(), exchange, "topic", ["lqz.*"])

    # As in S6, the last message reaches both and closes each sequence.
    publish_to_exchange(
        connect(),
        exchange,
        "topic",
        [
            ("lqz.handsome.xx", "two words after lqz"),
            ("lqz", "no word after lqz"),
            ("other.lqz", "unrouted"),
            ("lqz.handsome", "one word after lqz"),
        ],
    )
    hash_subscriber.receive(3)
    star_subscriber.receive(1)
    assert keys_and_bodies(hash_subscriber) == [
        ("lqz.handsome.xx", b"two words after lqz"),
        ("lqz", b"no word after lqz"),
        ("lqz.handsome", b"one word after lqz"),
    ]
    assert keys_and_bodies(star_subscriber) == [("lqz.handsome", b"one word after lqz")]


# --- S8: RPC ------------------------------------------------------------------


class RpcServer(threading.Thread):
    """Section 10.1's server, in a thread with its own connection.

    pika connections are not thread-safe, so this thread's connection is
    used only here; it runs until ``stop`` is set.
    """

    def __init__(self, broker, queue: str):
        super().__init__(daemon=True)
        self.broker = broker
        self.queue = queue
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            connection = self.broker.connect()
            try:
                self.serve(connection)
            finally:
                close_quietly(connection)
        except BaseException as exc:  # reported to the test by check()
            self.error = exc
            self.ready.set()

    def serve(self, connection):
        channel = connection.channel()
        channel.queue_declare(queue=self.queue)
        channel.basic_qos(prefetch_count=1)
        channel.basic_consume(queue=self.queue, on_message_callback=self.on_request)
        self.ready.set()
        while not self.stop.is_set():
            connection.process_data_events(time_limit=0.1)

    @staticmethod
    def on_request(ch, method, props, body):
        response = int(body) + 100
        ch.basic_publish(
            exchange="",
            routing_key=props.reply_to,
            properties=pika.BasicProperties(correlation_id=props.correlation_id),
            body=str(response),
        )
        ch.basic_ack(delivery_tag=method.delivery_tag)

    def check(self):
        if self.error is not None:
            raise AssertionError(f"RPC server failed: {self.error!r}") from self.error


class RpcClient:
    """Section 10.2's client, waiting for its reply within a deadline."""

    def __init__(self, connection, server_queue: str):
        self.connection = connection
        self.server_queue = server_queue
        self.channel = connection.channel()
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True
        )
        self.corr_id = None
        self.response = None

    def on_response(self, ch, method, props, body):
        if self.corr_id == props.correlation_id:
            self.response = body

    def call(self, n: int) -> bytes:
        self.response = None
        self.corr_id = str(uuid.uuid4())
        self.channel.basic_publish(
            exchange="",
            routing_key=self.server_queue,
            properties=pika.BasicProperties(reply_to=self.callback_queue, correlation_id=self.corr_id),
            body=str(n),
        )
        wait_until(lambda: self.response is not None, f"the reply to call({n})", pump=[self.connection])
        return self.response


@pytest.fixture
def rpc_server(broker, names):
    server = RpcServer(broker, names.queue("rpc_queue"))
    server.start()
    yield server
    server.stop.set()
    server.join(timeout=WAIT_S)
    assert not server.is_alive(), "RPC server thread did not stop"
    server.check()


def test_s8_rpc_call_50_returns_150(connect, rpc_server):
    assert rpc_server.ready.wait(timeout=WAIT_S), "RPC server did not start consuming"
    rpc_server.check()

    client = RpcClient(connect(), rpc_server.queue)
    assert client.callback_queue.startswith("amq.gen-")
    assert client.call(50) == b"150"
    # A second call is matched by its own correlation id.
    assert client.call(1) == b"101"
    rpc_server.check()


# --- Authentication -----------------------------------------------------------


@pytest.mark.parametrize("wrong", ["password", "user"])
def test_bad_credentials_are_refused_and_good_ones_still_work(broker, connect, wrong):
    if wrong == "password":
        user, password = broker.user, broker.password + "-wrong"
    else:
        user, password = f"nobody-{uuid.uuid4().hex[:8]}", broker.password
    with pytest.raises(
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    ) as refused:
        broker.connect(user, password)
    # pika wraps the broker's Connection.Close; it must be a 403 refusal.
    assert "(403) 'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in str(
        refused.value
    )

    channel = connect().channel()
    assert channel.queue_declare(queue="", exclusive=True).method.queue.startswith("amq.gen-")
