// React binding for realtimed-client: one RealtimeClient per component.
//
//   const { connected, events, send } = useRealtime({ url, token }, ['apps:created']);
//
// Identity rules, so that the usual way of writing a component (a fresh
// options object and a fresh channel array on every render) neither
// reconnects nor resubscribes:
// - the client is keyed by the VALUE of url and token (and whether a
//   getToken is given); getToken itself and the other options are read
//   through refs, so a new function or object each render changes nothing;
//   a new client resumes each channel where the last one was (since), so
//   a token change loses no event the server still holds;
// - the channel list is compared by value, as a set: order and duplicates
//   do not matter. A changed list becomes subscribe/unsubscribe calls on the
//   same client, never a new socket.
import * as React from 'react';
import { RealtimeClient } from './index.js';

const DEFAULT_MAX_EVENTS = 100;

// The channel set as a stable string key; names are [A-Za-z0-9_.:@-], so
// JSON of the sorted names is unambiguous.
function channelKey(channels) {
  if (channels == null)
    return '[]';
  const list = typeof channels === 'string' ? [channels] : Array.from(channels);
  const names = [...new Set(list.filter((c) => typeof c === 'string' && c !== ''))];
  names.sort();
  return JSON.stringify(names);
}

function boundedAppend(list, item, max) {
  if (!(max > 0))
    return list.length === 0 ? list : [];
  const keep = list.length >= max ? list.slice(list.length - max + 1) : list.slice();
  keep.push(item);
  return keep;
}

// Bring the client's subscriptions (subs: channel -> handle) to `wanted`.
function syncSubscriptions(live, wanted, onEvent) {
  const want = new Set(wanted);
  for (const [channel, handle] of live.subs) {
    if (!want.has(channel)) {
      live.subs.delete(channel);
      handle.unsubscribe();
    }
  }
  for (const channel of want) {
    if (!live.subs.has(channel)) {
      live.subs.set(channel, live.client.subscribe(channel,
        (data, meta) => onEvent(channel, data, meta)));
    }
  }
}

export function useRealtime(options, channels) {
  const { url, token, getToken, maxEvents, onUnrecoverable, onError, ...clientOptions } = options || {};
  const [connected, setConnected] = React.useState(false);
  const [events, setEvents] = React.useState([]);

  // Everything read at connect time or per event, kept current without
  // being an effect dependency.
  const getTokenRef = React.useRef(getToken);
  const optionsRef = React.useRef(clientOptions);
  const maxRef = React.useRef(DEFAULT_MAX_EVENTS);
  const channelsRef = React.useRef([]);
  const liveRef = React.useRef(null);   // { client, subs } of the current client
  const callbacksRef = React.useRef({ onUnrecoverable, onError });
  // where the last client was on each channel: a new one (new token or
  // url) resumes from there with since, so a token change loses nothing;
  // the first client starts from the `positions` option
  const positionsRef = React.useRef(null);

  const key = channelKey(channels);
  const hasGetToken = typeof getToken === 'function';

  // Declared first: effects run in order, so the client effect below sees
  // the values of this render.
  React.useEffect(() => {
    getTokenRef.current = getToken;
    callbacksRef.current = { onUnrecoverable, onError };
    optionsRef.current = clientOptions;
    maxRef.current = maxEvents === undefined ? DEFAULT_MAX_EVENTS : maxEvents;
  });

  const onEvent = React.useCallback((subscribed, data, meta) => {
    const m = meta || {};
    const ev = {
      channel: m.channel || subscribed,
      data,
      offset: m.offset,
      epoch: m.epoch,
      timestamp: m.timestamp,
    };
    setEvents((list) => boundedAppend(list, ev, maxRef.current));
  }, []);

  // Before the client effect, so that a client made in this commit starts
  // with this render's channels; on its own, a changed list is a diff on
  // the live client.
  React.useEffect(() => {
    channelsRef.current = JSON.parse(key);
    if (liveRef.current !== null)
      syncSubscriptions(liveRef.current, channelsRef.current, onEvent);
  }, [key, onEvent]);

  // Events are kept across a reconnect (a new url or token): they are
  // what the component received, not what the socket holds.
  React.useEffect(() => {
    if (!url)
      return undefined;
    if (positionsRef.current === null) {
      const given = optionsRef.current && optionsRef.current.positions;
      positionsRef.current = new Map(given instanceof Map ? given : Object.entries(given ?? {}));
    }
    const opts = Object.assign({}, optionsRef.current, { url, positions: positionsRef.current });
    if (token !== undefined && token !== null)
      opts.token = token;
    if (hasGetToken)
      opts.getToken = (...args) => getTokenRef.current(...args);
    const client = new RealtimeClient(opts);
    const live = { client, subs: new Map() };
    liveRef.current = live;
    const offs = [
      client.on('connected', () => setConnected(true)),
      client.on('disconnected', () => setConnected(false)),
      client.on('unrecoverable', (info) => {
        const f = callbacksRef.current.onUnrecoverable;
        if (typeof f === 'function') f(info);
      }),
      client.on('error', (err) => {
        const f = callbacksRef.current.onError;
        if (typeof f === 'function') f(err);
      }),
    ];
    syncSubscriptions(live, channelsRef.current, onEvent);
    // connect() deferred by a microtask: StrictMode's mount, unmount, mount
    // in development then opens one socket, not two (a client closed
    // before connect() never opened one).
    let cancelled = false;
    queueMicrotask(() => {
      if (!cancelled)
        client.connect();
    });
    return () => {
      cancelled = true;
      if (liveRef.current === live)
        liveRef.current = null;
      for (const off of offs) {
        if (typeof off === 'function')
          off();
      }
      const kept = new Map();
      for (const channel of live.subs.keys()) {
        const p = client.position(channel);
        if (p !== null)
          kept.set(channel, p);
      }
      positionsRef.current = kept;
      live.subs.clear();
      client.close();
      setConnected(false);
    };
  }, [url, token, hasGetToken, onEvent]);

  const send = React.useCallback((obj) => {
    const live = liveRef.current;
    if (live === null)
      return false;
    return live.client.send(obj);
  }, []);

  return { connected, events, send };
}
