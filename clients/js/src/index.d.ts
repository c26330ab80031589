// Declarations for realtimed-client (src/index.js).

/** Anything shaped like the browser's WebSocket constructor (the `ws` package fits). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener?(type: string, listener: (ev: any) => void): void;
  onopen?: ((ev: any) => void) | null;
  onmessage?: ((ev: any) => void) | null;
  onerror?: ((ev: any) => void) | null;
  onclose?: ((ev: any) => void) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** A token, or nothing (null, undefined, '') to connect anonymously. */
export type TokenResult = string | null | undefined;

export interface ReconnectOptions {
  /** Backoff base in ms (default 500): attempt n waits random(0, min(maxMs, baseMs * 2^n)). */
  baseMs?: number;
  /** Backoff cap in ms (default 30000). */
  maxMs?: number;
  /** Reconnects in a row without a good connection before giving up (default Infinity). */
  maxAttempts?: number;
  /** How long in ms a connection must stay up after `connected` to count as good: the attempts start again from 0 (default 5000). */
  stableMs?: number;
}

/**
 * How the token reaches the server:
 * - 'protocol' (default): subprotocol `token-JWT` (Sec-WebSocket-Protocol), never in a URL;
 * - 'auth': connect anonymously, then `{"type":"auth","token"}` before any subscribe
 *   (needs `allow_anonymous` on the server);
 * - 'query': `?token=JWT` in the URL (it may end up in access logs).
 */
export type TokenTransport = 'protocol' | 'auth' | 'query';

export interface RealtimeClientOptions {
  /** `ws://HOST:8888/ws` or `wss://HOST:8443/ws`. */
  url: string;
  /** A JWT. With getToken as well, it is used for the first connect only. */
  token?: string | null;
  /**
   * Called before each connect, on `token_expiring` (the answer is sent in-band),
   * after "Token expired", and once after "Invalid token"/"Token revoked"/... to see
   * whether a new token exists (the same string again: the client stays closed).
   */
  getToken?: () => TokenResult | Promise<TokenResult>;
  /** The WebSocket class; default globalThis.WebSocket. In Node < 22 pass `ws`. */
  WebSocket?: WebSocketConstructor | (new (...args: any[]) => any);
  reconnect?: ReconnectOptions;
  tokenTransport?: TokenTransport;
  /** In a browser: close while document.hidden, resume (with since) when visible. Default false. */
  pauseWhenHidden?: boolean;
  /** From opening the socket to `connected` (or `authenticated`), default 20000 ms. */
  connectTimeoutMs?: number;
  /** Longest wait for a getToken() promise, default 30000 ms. */
  tokenTimeoutMs?: number;
  /**
   * Where to resume channels subscribed later, channel -> position (e.g. what
   * `position()` of an earlier client said): their first subscribe carries `since`.
   */
  positions?: Record<string, Position> | Map<string, Position>;
}

/** What a subscription handler gets besides the event's data. */
export interface EventMeta {
  channel: string;
  /** Position in the channel's history; null on a channel without history. */
  offset: number | null;
  epoch: string | null;
  /** Server timestamp, ISO 8601 with milliseconds. */
  timestamp: string;
}

export type EventHandler<T = any> = (data: T, meta: EventMeta) => void;

export interface Subscription {
  readonly channel: string;
  /** Removes this handler; the last one of a channel unsubscribes on the server. */
  unsubscribe(): void;
}

export interface Position {
  epoch: string;
  offset: number;
}

export interface User {
  userId: string;
  email?: string;
  role?: string;
  [claim: string]: unknown;
}

/** The server's `connected` message (for tokenTransport 'auth': merged with `authenticated`). */
export interface ConnectedMessage {
  type: 'connected';
  connectionId: string;
  user: User | null;
  authorizedChannels: string[];
  expiresAt?: string | null;
  timestamp: string;
  [field: string]: unknown;
}

export interface AuthenticatedMessage {
  type: 'authenticated';
  user: User;
  authorizedChannels: string[];
  expiresAt: string | null;
  timestamp: string;
}

export interface TokenExpiringMessage {
  type: 'token_expiring';
  expiresAt: string;
  timestamp: string;
}

export interface DisconnectedInfo {
  code: number;
  reason: string;
  /** False when the client stays closed (close(), 1000, a refused token, maxAttempts). */
  willReconnect: boolean;
}

export interface ReconnectingInfo {
  /** 1 for the first attempt after a drop; reset by `connected`. */
  attempt: number;
  delayMs: number;
  code: number;
  reason: string;
}

export interface RecoveredInfo {
  channel: string;
  /** The channel's epoch and newest offset when the server answered. */
  epoch: string;
  offset: number;
  /** The position the client resumed from; the events after it are replayed. */
  since: Position;
}

export interface UnrecoverableInfo {
  channel: string;
  /** The position the client continues from; what came before it was missed. */
  epoch: string | null;
  offset: number | null;
  /**
   * 'replay too large': the replay of what was missed is over the server's
   * output limit (closed 4000 twice in a row while resuming), so the channel
   * starts afresh from live events; offset/epoch are then the last delivered.
   */
  reason?: 'replay too large';
}

export interface SubscribedInfo {
  channel: string;
  epoch: string | null;
  offset: number | null;
  /** true/false for a subscribe with since, null for a plain one. */
  recovered: boolean | null;
}

export interface UnsubscribedInfo {
  channel: string;
  /** Set when the server ended it ("not authorized"), null for an answer to unsubscribe. */
  reason: string | null;
}

export interface RealtimeErrorInfo {
  /**
   * server: an `error` message; transport: the socket failed; token: getToken failed or
   * no way to refresh; reconnect: maxAttempts reached; protocol: bad JSON; handler: a
   * subscription handler or listener threw.
   */
  source: 'server' | 'transport' | 'token' | 'reconnect' | 'protocol' | 'handler';
  message: string;
  /** For server errors: the request type answered ("subscribe", "auth", ...). */
  request?: string;
  channel?: string;
  /** The server's error message as received. */
  data?: ServerMessage;
  error?: unknown;
}

export interface ServerMessage {
  type: string;
  timestamp?: string;
  [field: string]: unknown;
}

export interface RealtimeEvents {
  connected: ConnectedMessage;
  disconnected: DisconnectedInfo;
  reconnecting: ReconnectingInfo;
  recovered: RecoveredInfo;
  unrecoverable: UnrecoverableInfo;
  subscribed: SubscribedInfo;
  unsubscribed: UnsubscribedInfo;
  authenticated: AuthenticatedMessage;
  token_expiring: TokenExpiringMessage;
  error: RealtimeErrorInfo;
  /** Every server message; events only once each, after dedupe. */
  message: ServerMessage;
}

export type RealtimeEventName = keyof RealtimeEvents;

export type ClientState = 'idle' | 'connecting' | 'authenticating' | 'open' | 'waiting' | 'paused' | 'closed';

export class RealtimeClient {
  constructor(options: RealtimeClientOptions);
  url: string;
  readonly state: ClientState;
  /** True between `connected` and the socket's close. */
  readonly connected: boolean;
  /** The current WebSocket, or null. */
  readonly socket: WebSocketLike | null;
  /** Reconnect attempts since the last `connected`. */
  readonly attempt: number;
  readonly session: ConnectedMessage | null;
  readonly connectionId: string | null;
  readonly user: User | null;

  /** Opens the connection (and keeps it open); a no-op while already connecting or connected. */
  connect(): void;
  /** Closes with 1000 and stays closed; positions are kept for a later connect(). */
  close(): void;
  subscribe<T = any>(channel: string, handler: EventHandler<T>): Subscription;
  /** The last position seen on a subscribed channel. */
  position(channel: string): Position | null;
  on<E extends RealtimeEventName>(event: E, listener: (arg: RealtimeEvents[E]) => void): () => void;
  off<E extends RealtimeEventName>(event: E, listener: (arg: RealtimeEvents[E]) => void): void;
  /** Sends a raw protocol message (JSON-encoded unless a string); false when not open. */
  send(message: object | string): boolean;
  /**
   * Sends token in-band (`auth`) when connected, and the next connect uses it
   * (without asking getToken).  One the server refuses in-band is forgotten.
   */
  setToken(token: string): void;
}

export interface CompatOptions {
  WebSocket?: RealtimeClientOptions['WebSocket'];
  /** Default 'protocol'; 'query' puts the token in the URL as the product sheet did. */
  tokenTransport?: TokenTransport;
  pauseWhenHidden?: boolean;
  maxReconnectDelay?: number;
  /** Where the sheet's console output goes (default console). */
  logger?: { log(...args: any[]): void; error(...args: any[]): void };
}

/** The product sheet's class shape, built on RealtimeClient. */
export class RealtimeClientCompat {
  constructor(token: string | null | undefined, url?: string, options?: CompatOptions);
  /** Read before each connect: assign a new token here to refresh. */
  token: string | null | undefined;
  url: string;
  maxReconnectAttempts: number;
  reconnectDelay: number;
  readonly reconnectAttempts: number;
  /** The current WebSocket (made by connect() at once), or null. */
  readonly ws: WebSocketLike | null;
  /** The RealtimeClient underneath. */
  readonly client: RealtimeClient;
  connect(): void;
  /** Called with every server message (events once each); logs as the sheet did. Override it. */
  handleMessage(message: ServerMessage): void;
  subscribe<T = any>(channel: string, handler?: (data: T, message: ServerMessage & EventMeta & { data: T }) => void): Subscription;
  unsubscribe(channel: string): void;
  send(message: object | string): void;
  disconnect(): void;
}

export default RealtimeClient;
