'use strict';
// The product sheet's RealtimeClient class, copied verbatim; only the URL
// differs (the test daemon's port).  Node 20 has no global WebSocket, so
// the `ws` package stands in for the browser's.
const { test, after } = require('node:test');
const assert = require('node:assert');
const jwt = require('jsonwebtoken');
const { SECRET, startDaemon, waitFor } = require('./daemon');

global.WebSocket = require('ws');

// ---- verbatim from the product sheet ----------------------------------
class RealtimeClient {
constructor(token, url = 'ws://localhost:8888/ws') {
this.token = token;
this.url = url;
this.ws = null;
this.reconnectAttempts = 0;
this.maxReconnectAttempts = 5;
this.reconnectDelay = 1000;
}
connect() {
// Connect with token as query parameter
this.ws = new WebSocket(`${this.url}?token=${this.token}`);
this.ws.onopen = () => {
console.log('WebSocket connected');
this.reconnectAttempts = 0;
};
this.ws.onmessage = (event) => {
const message = JSON.parse(event.data);
this.handleMessage(message);
};
this.ws.onerror = (error) => {
console.error('WebSocket error:', error);
};
this.ws.onclose = () => {
console.log('WebSocket closed');
this.reconnect();
};
}
handleMessage(message) {
console.log('Received:', message);
switch (message.type) {
case 'connected':
console.log('Connection ID:', message.connectionId);
console.log('Authorized channels:', message.authorizedChannels);
break;
case 'subscribed':
console.log(`Subscribed to ${message.channel}`);
break;
case 'event':
console.log(`Event on ${message.channel}:`, message.data);
// Handle your event here
break;
case 'error':
console.error('Server error:', message.message);
break;
case 'pong':
console.log('Pong received');
break;
}
}
subscribe(channel) {
this.send({
type: 'subscribe',
channel: channel
});
}
unsubscribe(channel) {
this.send({
type: 'unsubscribe',
channel: channel
});
}
send(data) {
if (this.ws.readyState === WebSocket.OPEN) {
this.ws.send(JSON.stringify(data));
} else {
console.error('WebSocket is not open');
}
}
reconnect() {
if (this.reconnectAttempts < this.maxReconnectAttempts) {
this.reconnectAttempts++;
const delay = this.reconnectDelay * Math.pow(2, this.reconnectAttempts - 1);
console.log(`Reconnecting in ${delay}ms (attempt ${this.reconnectAttempts})`);
setTimeout(() => {
this.connect();
}, delay);
} else {
console.error('Max reconnection attempts reached');
}
}
disconnect() {
if (this.ws) {
this.ws.close();
}
}
}
// ---- end of the sheet's class -----------------------------------------

const daemons = [];
after(async () => { for (const d of daemons) await d.stop(); });

function mint(claims) {
  return jwt.sign(claims, SECRET, { algorithm: 'HS256', expiresIn: '1h' });
}

// Record what the client handles, without changing the class.
function record(client) {
  const received = [];
  const orig = client.handleMessage.bind(client);
  client.handleMessage = (m) => { received.push(m); orig(m); };
  return received;
}

function quietDisconnect(client) {
  client.maxReconnectAttempts = 0;    // no reconnect timers left behind
  client.disconnect();
}

test('RealtimeClient connects, subscribes as in the sheet usage, gets pong', { timeout: 15000 }, async () => {
  const d = await startDaemon();
  daemons.push(d);
  const token = mint({ userId: 'my-user-id', email: 'me@example.com' });
  const client = new RealtimeClient(token, `ws://127.0.0.1:${d.port}/ws`);
  const received = record(client);
  client.connect();

  // Subscribe to channels
  client.ws.onopen = () => {
    client.subscribe('apps:created');
    client.subscribe('users:updated');
    client.subscribe('user:my-user-id');
  };

  await waitFor(() => received.length >= 4, 5000, 'connected + 3 subscribed');
  assert.strictEqual(received[0].type, 'connected');
  assert.strictEqual(received[0].user.userId, 'my-user-id');
  assert.deepStrictEqual(received.slice(1, 4).map((m) => [m.type, m.channel]), [
    ['subscribed', 'apps:created'],
    ['subscribed', 'users:updated'],
    ['subscribed', 'user:my-user-id'],
  ]);

  client.send({ type: 'ping' });
  await waitFor(() => received.some((m) => m.type === 'pong'), 5000, 'pong');

  client.send({ type: 'list_channels' });
  const channels = await waitFor(() => received.find((m) => m.type === 'channels'), 5000, 'channels');
  assert.deepStrictEqual([...channels.subscribedChannels].sort(),
    ['apps:created', 'user:my-user-id', 'users:updated']);

  client.unsubscribe('apps:created');
  await waitFor(() => received.some((m) => m.type === 'unsubscribed'), 5000, 'unsubscribed');

  quietDisconnect(client);
});

test('RealtimeClient sees the sheet error text for a forbidden channel', { timeout: 15000 }, async () => {
  const d = await startDaemon();
  daemons.push(d);
  const client = new RealtimeClient(mint({ userId: 'plain-user' }), `ws://127.0.0.1:${d.port}/ws`);
  const received = record(client);
  client.connect();
  client.ws.onopen = () => { client.subscribe('system:health'); };
  const err = await waitFor(() => received.find((m) => m.type === 'error'), 5000, 'error');
  assert.strictEqual(err.message, 'Not authorized to subscribe to this channel');
  quietDisconnect(client);
});

test('RealtimeClient reconnects after the server restarts', { timeout: 20000 }, async () => {
  const d1 = await startDaemon();
  const port = d1.port;
  const client = new RealtimeClient(mint({ userId: 'again' }), `ws://127.0.0.1:${port}/ws`);
  const received = record(client);
  client.connect();
  await waitFor(() => received.some((m) => m.type === 'connected'), 5000, 'first connected');
  const firstId = received.find((m) => m.type === 'connected').connectionId;

  await d1.stop();                          // clients see 1001 and reconnect
  const d2 = await startDaemon({}, { port });
  daemons.push(d2);
  const second = await waitFor(() => received.filter((m) => m.type === 'connected')[1],
    10000, 'second connected');
  assert.notStrictEqual(second.connectionId, firstId);
  assert.strictEqual(client.reconnectAttempts, 0);
  quietDisconnect(client);
});
