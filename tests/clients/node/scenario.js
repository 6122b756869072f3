// The client scenario (see ../README.md) with Node's amqplib. Prints
// "OK node" and exits 0 when every step behaved as RabbitMQ behaves;
// otherwise names the step and exits 1.
'use strict';

const amqp = require('amqplib');

const COUNT = 100;
let step = 'connect';

function fail(what) {
  console.error(`FAIL node, step "${step}": ${what}`);
  process.exit(1);
}

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const prefix = (process.env.NAME_PREFIX || '') + 'node-';
  // A short heartbeat, so that the idle pause below proves both sides keep it.
  const url = new URL(process.env.AMQP_URL);
  url.searchParams.set('heartbeat', '2');
  const conn = await amqp.connect(url.toString());
  if (conn.connection.heartbeat !== 2) fail(`heartbeat negotiated: ${conn.connection.heartbeat}`);
  // A channel error is reported on the channel, and on the connection as
  // an 'error' only when the connection itself fails.
  conn.on('error', (e) => fail(`connection error: ${e.message}`));
  const ch = await conn.createConfirmChannel();

  step = 'declare a durable queue';
  const q = prefix + 'work';
  await ch.assertQueue(q, { durable: true });

  step = 'publish persistent messages with confirms';
  for (let i = 0; i < COUNT; i++) {
    ch.sendToQueue(q, Buffer.from(`message ${i}`), {
      persistent: true,
      contentType: 'text/plain',
      correlationId: `c-${i}`,
      messageId: `m-${i}`,
      priority: 3,
      timestamp: 1700000000,
      headers: { n: i, lang: 'node' },
    });
  }
  await within(10000, ch.waitForConfirms(), 'confirms');

  step = 'consume with prefetch and manual acks';
  await ch.prefetch(10);
  const received = [];
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  const { consumerTag } = await ch.consume(q, (msg) => {
    received.push(msg);
    ch.ack(msg);
    if (received.length === COUNT) done();
  }, { noAck: false });
  await within(10000, all, `${COUNT} deliveries`);
  received.forEach((msg, i) => {
    const p = msg.properties;
    if (msg.content.toString() !== `message ${i}` || p.correlationId !== `c-${i}` || p.messageId !== `m-${i}`) {
      fail(`delivery ${i}: ${msg.content} ${JSON.stringify(p)}`);
    }
    if (p.deliveryMode !== 2 || p.priority !== 3 || p.contentType !== 'text/plain' || p.timestamp !== 1700000000) {
      fail(`delivery ${i} lost properties: ${JSON.stringify(p)}`);
    }
    if (p.headers.n !== i || p.headers.lang !== 'node') fail(`delivery ${i} headers: ${JSON.stringify(p.headers)}`);
  });
  await ch.cancel(consumerTag);

  step = 'get from the empty queue';
  if ((await ch.get(q, { noAck: false })) !== false) fail('basic.get returned a message from an empty queue');

  step = 'topic routing and a mandatory publish that returns';
  const x = prefix + 'topic';
  await ch.assertExchange(x, 'topic', { durable: false, autoDelete: true });
  const { queue: sub } = await ch.assertQueue('', { exclusive: true });
  if (!sub.startsWith('amq.gen-')) fail(`server-named queue ${sub}`);
  await ch.bindQueue(sub, x, 'lqz.*');
  const returned = new Promise((resolve) => ch.once('return', resolve));
  ch.publish(x, 'lqz.handsome', Buffer.from('one word'), { mandatory: true });
  ch.publish(x, 'lqz.handsome.xx', Buffer.from('two words'), { mandatory: true });
  const r = await within(10000, returned, 'the return of the unroutable message');
  if (r.fields.replyCode !== 312 || r.fields.routingKey !== 'lqz.handsome.xx') {
    fail(`return ${r.fields.replyCode} ${r.fields.replyText} for ${r.fields.routingKey}`);
  }
  await ch.waitForConfirms();
  const one = await ch.get(sub, { noAck: true });
  if (!one || one.content.toString() !== 'one word') fail(`the routed message: ${one && one.content}`);

  step = 'a 406 closes the channel, not the connection';
  const bad = await conn.createChannel();
  const closed = new Promise((resolve) => bad.once('error', resolve));
  let refused;
  try {
    await bad.assertQueue(q, { durable: false });
  } catch (e) {
    refused = e;
  }
  if (!refused || refused.code !== 406 || !refused.message.includes("inequivalent arg 'durable'")) {
    fail(`redeclaring durable ${q} as transient: ${refused && refused.message}`);
  }
  await within(10000, closed, 'the channel error event');
  const again = await conn.createChannel();
  await again.checkQueue(q);

  step = 'a 1 MiB message crosses frames both ways';
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  again.sendToQueue(q, big);
  let back = false;
  for (let tries = 0; back === false && tries < 100; tries++) {
    back = await again.get(q, { noAck: true });
    if (back === false) await new Promise((r) => setTimeout(r, 50));
  }
  if (!back || !back.content.equals(big)) fail(`got ${back && back.content.length} bytes`);

  step = 'the server cancels a consumer whose queue is deleted';
  const gone = prefix + 'gone';
  await again.assertQueue(gone, { durable: false });
  const cancelled = new Promise((resolve) => {
    again.consume(gone, (msg) => { if (msg === null) resolve(); }, { noAck: true, consumerTag: 'doomed' });
  });
  const other = await conn.createChannel();
  await other.deleteQueue(gone);
  await within(10000, cancelled, 'basic.cancel');

  step = 'an idle connection outlives several heartbeat intervals';
  await new Promise((r) => setTimeout(r, 5000));
  const alive = await conn.createChannel();
  await alive.checkQueue(q);

  step = 'delete and close';
  await again.deleteQueue(q);
  await again.deleteExchange(x);
  await conn.close();
  console.log('OK node');
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
