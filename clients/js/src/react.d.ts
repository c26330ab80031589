// Declarations for realtimed-client/react (src/react.js).
import type { RealtimeClient } from './index.js';

/** The options RealtimeClient's constructor takes. */
type ClientOptions = NonNullable<ConstructorParameters<typeof RealtimeClient>[0]>;

/** One received event, as kept in `events`. */
export interface RealtimeEvent<T = unknown> {
  channel: string;
  /** The published payload parsed as JSON (a string if it was not JSON). */
  data: T;
  /** Position in the channel's history; absent on a channel without history. */
  offset?: number | null;
  epoch?: string | null;
  /** Server timestamp, ISO 8601 with milliseconds. */
  timestamp?: string;
}

export type UseRealtimeOptions = Omit<ClientOptions, 'url' | 'token' | 'getToken'> & {
  /** WebSocket URL (ws:// or wss://); a falsy url opens no connection. */
  url: string | null | undefined;
  /** A new token value opens a new connection, resuming every channel where
   *  the last one was (since); the same string does not. */
  token?: string | null;
  /** Read through a ref: a new function on each render does not reconnect. */
  getToken?: ClientOptions extends { getToken?: infer G } ? G : () => string | Promise<string>;
  /** How many events `events` keeps, newest last (default 100). */
  maxEvents?: number;
  /** Called when a channel missed events the server no longer holds: reload its state. */
  onUnrecoverable?: (info: { channel: string; epoch: string | null; offset: number | null; reason?: string }) => void;
  /** Called with the client's errors (read through a ref, as getToken). */
  onError?: (err: { source: string; message: string; [key: string]: unknown }) => void;
};

export interface UseRealtimeResult<T = unknown> {
  /** True between the client's `connected` and `disconnected`. */
  connected: boolean;
  /** The last `maxEvents` events of all subscribed channels, oldest first. */
  events: ReadonlyArray<RealtimeEvent<T>>;
  /**
   * Sends a message (an object is sent as JSON) on the component's client,
   * as RealtimeClient#send: false when it is not open, or when there is no
   * client (not started yet, or unmounted). Stable across renders.
   */
  send(message: object | string): boolean;
}

/**
 * One RealtimeClient for the calling component, closed on unmount.
 * `channels` is compared by value, as a set: a fresh array with the same
 * names changes nothing; a changed list subscribes and unsubscribes on the
 * same connection.
 */
export function useRealtime<T = unknown>(
  options: UseRealtimeOptions,
  channels?: ReadonlyArray<string> | string | null,
): UseRealtimeResult<T>;
