/** StreamAnomalies as an async iterable that resumes by itself after a disconnect. */
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";

import { fromCallError } from "./errors.js";
import {
  AnomalyService,
  type Anomaly as WireAnomaly,
} from "./gen/featurestore/v1/anomaly_service_pb.js";

/**
 * An opaque stream position: a stream started from it continues exactly after the message that
 * carried it, neither repeating nor skipping an anomaly. Store it as a string.
 */
export type ResumeToken = string & { readonly __brand: "ResumeToken" };

/** Makes a ResumeToken of a stored string. */
export function resumeToken(stored: string): ResumeToken {
  return stored as ResumeToken;
}

/** Where a stream begins. */
export type Start = { from: "now" } | { from: "time"; time: Date } | { from: "token"; token: ResumeToken };

/** Only anomalies of these symbols (all when empty), scoring at least minScore (when set). */
export interface AnomalyFilter {
  symbols?: readonly string[];
  minScore?: number;
}

/** An anomaly scored by a model, with the token that resumes just after it. */
export interface Anomaly {
  readonly id: string;
  readonly symbol: string;
  readonly eventTime: Date;
  readonly score: number;
  readonly threshold?: number;
  readonly modelName: string;
  readonly modelVersion: string;
  readonly features: Readonly<Record<string, number>>;
  readonly detectedAt: Date;
  readonly resumeToken: ResumeToken;
}

/** The codes after which the stream reconnects (as the Python SDK's stream does). */
const resumable = new Set([Code.Unavailable, Code.ResourceExhausted, Code.Internal]);

/**
 * The codes connect-node gives a call whose connection dropped (the server process died:
 * Canceled; a reset connection: Aborted). The same codes come of a cancel the caller asked for,
 * which the stream tells apart by its own signal: only a drop reconnects.
 */
const dropped = new Set([Code.Canceled, Code.Aborted]);

/** How a stream can be ended besides `close()`. */
export interface StreamOptions {
  /** Aborting it ends the stream (and its call), as `close()` does. */
  signal?: AbortSignal;
}

function anomaly(a: WireAnomaly, token: ResumeToken): Anomaly {
  return {
    id: a.anomalyId,
    symbol: a.symbol,
    eventTime: a.eventTime ? timestampDate(a.eventTime) : new Date(0),
    score: a.score,
    threshold: a.threshold,
    modelName: a.modelName,
    modelVersion: a.modelVersion,
    features: a.features,
    detectedAt: a.detectedAt ? timestampDate(a.detectedAt) : new Date(0),
    resumeToken: token,
  };
}

/**
 * Iterates anomalies (`for await`); after a disconnect, reconnects with the latest token it holds.
 * Checkpoints (a token without an anomaly) move the token without being yielded. Reconnects back
 * off (full jitter from 50 ms, doubling, at most 2 s); the stream throws once `maxAttempts`
 * connections in a row failed over more than `reconnectWindowMs`. A dropped connection (the
 * server went away) reconnects too.
 * `close()` or the `signal` of its options cancels the call and ends the iteration without
 * reconnecting; so does leaving the `for await` loop (break, return, throw), so that the server
 * sees the stream end and Node can exit. A stream is iterated once.
 */
export class AnomalyStream implements AsyncIterable<Anomaly> {
  /** The latest token received (or started from): where a new stream would continue. */
  resumeToken: ResumeToken | undefined;
  /** How many times the stream reconnected. */
  reconnects = 0;
  /** Connections in a row that must fail before the stream throws (with `reconnectWindowMs`). */
  maxAttempts = 4;
  /**
   * How long the stream keeps reconnecting after its connection went (30 s): it throws only once
   * `maxAttempts` connections in a row failed and the first of them failed longer ago than this,
   * so a server that restarts within it loses nothing.
   */
  reconnectWindowMs = 30_000;
  private readonly abort = new AbortController();

  constructor(
    private readonly client: Client<typeof AnomalyService>,
    private readonly filter: AnomalyFilter,
    private readonly start: Start,
    options: StreamOptions = {},
  ) {
    this.resumeToken = start.from === "token" ? start.token : undefined;
    const signal = options.signal;
    if (signal?.aborted) {
      this.abort.abort();
    }
    signal?.addEventListener("abort", () => this.abort.abort(), {
      once: true,
      signal: this.abort.signal,
    });
  }

  /** Cancels the call and ends the iteration. */
  close(): void {
    this.abort.abort();
  }

  private request() {
    const start =
      this.resumeToken !== undefined
        ? { case: "resumeToken" as const, value: this.resumeToken }
        : this.start.from === "time"
          ? { case: "startTime" as const, value: timestampFromDate(this.start.time) }
          : { case: "latest" as const, value: {} };
    return { symbols: [...(this.filter.symbols ?? [])], minScore: this.filter.minScore, start };
  }

  /**
   * The start time's filter (event time at or after it), applied again: a reconnect sends the
   * token in its place (`start` is a oneof), and the server then no longer applies it.
   */
  private wanted(a: WireAnomaly): boolean {
    if (this.start.from !== "time") {
      return true;
    }
    const since = timestampFromDate(this.start.time);
    const seconds = a.eventTime?.seconds ?? 0n;
    const nanos = a.eventTime?.nanos ?? 0;
    return seconds > since.seconds || (seconds === since.seconds && nanos >= since.nanos);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Anomaly> {
    const signal = this.abort.signal;
    let failures = 0;
    let firstFailed = 0;
    try {
      while (!signal.aborted) {
        try {
          for await (const message of this.client.streamAnomalies(this.request(), { signal })) {
            failures = 0;
            this.resumeToken = message.resumeToken as ResumeToken;
            if (message.anomaly !== undefined && this.wanted(message.anomaly)) {
              yield anomaly(message.anomaly, this.resumeToken);
            }
          }
          return;
        } catch (error) {
          if (signal.aborted) {
            return;
          }
          failures++;
          if (failures === 1) {
            firstFailed = Date.now();
          }
          const gaveUp =
            failures >= this.maxAttempts && Date.now() - firstFailed >= this.reconnectWindowMs;
          const retry =
            error instanceof ConnectError &&
            (resumable.has(error.code) || dropped.has(error.code)) &&
            !gaveUp;
          if (!retry) {
            throw fromCallError(error);
          }
          const ceiling = Math.min(2000, 50 * 2 ** Math.min(failures - 1, 6));
          await pause(Math.random() * ceiling, signal);
          this.reconnects++;
        }
      }
    } finally {
      // Leaving the loop early ends the call: connect-node does not cancel it by itself.
      this.abort.abort();
    }
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
