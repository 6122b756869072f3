// The client scenario (see ../README.md) with Go's amqp091-go, the
// RabbitMQ team's Go client. Prints "OK go" and exits 0 when every step
// behaved as RabbitMQ behaves; otherwise names the step and exits 1.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const count = 100

var step = "connect"

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL go, step %q: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func main() {
	url := os.Getenv("AMQP_URL")
	prefix := os.Getenv("NAME_PREFIX") + "go-"
	// A short heartbeat, so that the idle pause below proves both sides keep it.
	conn, err := amqp.DialConfig(url, amqp.Config{Heartbeat: 2 * time.Second})
	check(err)
	if conn.Config.Heartbeat != 2*time.Second {
		fail("heartbeat negotiated: %v", conn.Config.Heartbeat)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	check(err)

	step = "declare a durable queue"
	q := prefix + "work"
	_, err = ch.QueueDeclare(q, true, false, false, false, nil)
	check(err)

	step = "publish persistent messages with confirms"
	check(ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, count))
	for i := 0; i < count; i++ {
		err = ch.Publish("", q, false, false, amqp.Publishing{
			DeliveryMode:  amqp.Persistent,
			ContentType:   "text/plain",
			CorrelationId: "c-" + strconv.Itoa(i),
			MessageId:     "m-" + strconv.Itoa(i),
			Priority:      3,
			Timestamp:     time.Unix(1700000000, 0),
			Headers:       amqp.Table{"n": int32(i), "lang": "go"},
			Body:          []byte("message " + strconv.Itoa(i)),
		})
		check(err)
	}
	for i := 0; i < count; i++ {
		select {
		case c := <-confirms:
			if !c.Ack {
				fail("message %d was nacked", c.DeliveryTag)
			}
		case <-time.After(10 * time.Second):
			fail("only %d of %d confirms arrived", i, count)
		}
	}

	step = "consume with prefetch and manual acks"
	check(ch.Qos(10, 0, false))
	deliveries, err := ch.Consume(q, "go-consumer", false, false, false, false, nil)
	check(err)
	for i := 0; i < count; i++ {
		select {
		case d := <-deliveries:
			want := "message " + strconv.Itoa(i)
			if string(d.Body) != want || d.CorrelationId != "c-"+strconv.Itoa(i) || d.MessageId != "m-"+strconv.Itoa(i) {
				fail("delivery %d: body %q, correlation id %q, message id %q", i, d.Body, d.CorrelationId, d.MessageId)
			}
			if d.DeliveryMode != amqp.Persistent || d.Priority != 3 || d.ContentType != "text/plain" || d.Timestamp.Unix() != 1700000000 {
				fail("delivery %d lost properties: %+v", i, d)
			}
			if n, ok := d.Headers["n"].(int32); !ok || int(n) != i || d.Headers["lang"] != "go" {
				fail("delivery %d headers: %v", i, d.Headers)
			}
			check(d.Ack(false))
		case <-time.After(10 * time.Second):
			fail("only %d of %d deliveries arrived", i, count)
		}
	}
	check(ch.Cancel("go-consumer", false))

	step = "get from the empty queue"
	_, ok, err := ch.Get(q, false)
	check(err)
	if ok {
		fail("basic.get returned a message from an empty queue")
	}

	step = "topic routing and a mandatory publish that returns"
	x := prefix + "topic"
	check(ch.ExchangeDeclare(x, "topic", false, true, false, false, nil))
	sub, err := ch.QueueDeclare("", false, true, true, false, nil)
	check(err)
	if len(sub.Name) < 8 || sub.Name[:8] != "amq.gen-" {
		fail("server-named queue %q", sub.Name)
	}
	check(ch.QueueBind(sub.Name, "lqz.*", x, false, nil))
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	check(ch.Publish(x, "lqz.handsome", true, false, amqp.Publishing{Body: []byte("one word")}))
	check(ch.Publish(x, "lqz.handsome.xx", true, false, amqp.Publishing{Body: []byte("two words")}))
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.RoutingKey != "lqz.handsome.xx" {
			fail("return %d %q for %q", r.ReplyCode, r.ReplyText, r.RoutingKey)
		}
	case <-time.After(10 * time.Second):
		fail("the unroutable mandatory message did not come back")
	}
	got, ok, err := ch.Get(sub.Name, true)
	check(err)
	if !ok || string(got.Body) != "one word" {
		fail("the routed message: %v %q", ok, got.Body)
	}

	step = "a 406 closes the channel, not the connection"
	bad, err := conn.Channel()
	check(err)
	_, err = bad.QueueDeclare(q, false, false, false, false, nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != 406 {
		fail("redeclaring durable %q as transient: %v", q, err)
	}
	again, err := conn.Channel()
	check(err)
	_, err = again.QueueDeclarePassive(q, true, false, false, false, nil)
	check(err)

	step = "a 1 MiB message crosses frames both ways"
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	check(again.Publish("", q, false, false, amqp.Publishing{Body: big}))
	var back amqp.Delivery
	for tries := 0; ; tries++ {
		back, ok, err = again.Get(q, true)
		check(err)
		if ok || tries == 100 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok || string(back.Body) != string(big) {
		fail("got %v, %d bytes", ok, len(back.Body))
	}

	step = "the server cancels a consumer whose queue is deleted"
	gone := prefix + "gone"
	_, err = again.QueueDeclare(gone, false, false, false, false, nil)
	check(err)
	cancels := again.NotifyCancel(make(chan string, 1))
	_, err = again.Consume(gone, "doomed", true, false, false, false, nil)
	check(err)
	other, err := conn.Channel()
	check(err)
	_, err = other.QueueDelete(gone, false, false, false)
	check(err)
	select {
	case tag := <-cancels:
		if tag != "doomed" {
			fail("cancelled %q", tag)
		}
	case <-time.After(10 * time.Second):
		fail("no basic.cancel")
	}

	step = "an idle connection outlives several heartbeat intervals"
	time.Sleep(5 * time.Second)
	if conn.IsClosed() {
		fail("the connection closed while idle")
	}

	step = "delete and close"
	_, err = again.QueueDelete(q, false, false, false)
	check(err)
	check(again.ExchangeDelete(x, false, false))
	check(conn.Close())
	fmt.Println("OK go")
}
