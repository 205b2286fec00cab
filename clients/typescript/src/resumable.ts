/**
 * The resume loop that StreamAnomalies and StreamPredictions share: both send a resume token with
 * every message (checkpoints carry nothing else), and a call that starts from the latest token
 * received continues exactly after it. A request's `start` is a oneof, so a reconnect sends the
 * token in place of a start time, whose filter the server then no longer applies: the stream
 * applies it again to what it yields (`atOrAfter`).
 */
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

import { fromCallError } from "./errors.js";

/**
 * An opaque stream position: a stream started from it continues exactly after the message that
 * carried it, neither repeating nor skipping an item. Store it as a string.
 */
export type ResumeToken = string & { readonly __brand: "ResumeToken" };

/** Makes a ResumeToken of a stored string. */
export function resumeToken(stored: string): ResumeToken {
  return stored as ResumeToken;
}

/** Where a stream begins. */
export type Start = { from: "now" } | { from: "time"; time: Date } | { from: "token"; token: ResumeToken };

/** How a stream can be ended besides `close()`. */
export interface StreamOptions {
  /** Aborting it ends the stream (and its call), as `close()` does. */
  signal?: AbortSignal;
}

/** The `start` oneof of a stream request (StreamAnomaliesRequest, StreamPredictionsRequest). */
export type StartCase =
  | { case: "resumeToken"; value: string }
  | { case: "startTime"; value: Timestamp }
  | { case: "latest"; value: Record<string, never> };

/** The codes after which a stream reconnects (as the Python SDK's stream does). */
const resumable = new Set([Code.Unavailable, Code.ResourceExhausted, Code.Internal]);

/**
 * The codes connect-node gives a call whose connection dropped (the server process died:
 * Canceled; a reset connection: Aborted). The same codes come of a cancel the caller asked for,
 * which the stream tells apart by its own signal: only a drop reconnects.
 */
const dropped = new Set([Code.Canceled, Code.Aborted]);

/**
 * Iterates a stream's items (`for await`); after a disconnect, reconnects with the latest token it
 * holds. Checkpoints (a token without an item) move the token without being yielded. Reconnects
 * back off (full jitter from 50 ms, doubling, at most 2 s); the stream throws once `maxAttempts`
 * connections in a row failed over more than `reconnectWindowMs`. A dropped connection (the server
 * went away) reconnects too. `close()` or the `signal` of its options cancels the call and ends the
 * iteration without reconnecting; so does leaving the `for await` loop (break, return, throw), so
 * that the server sees the stream end and Node can exit. A stream is iterated once.
 *
 * A subclass opens the call (`open`) and makes a message's item (`item`: undefined for a
 * checkpoint or an item the start time's filter drops).
 */
export abstract class ResumableStream<M extends { resumeToken: string }, T> implements AsyncIterable<T> {
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
  private readonly since: Timestamp | undefined;

  constructor(
    private readonly start: Start,
    options: StreamOptions = {},
  ) {
    this.resumeToken = start.from === "token" ? start.token : undefined;
    this.since = start.from === "time" ? timestampFromDate(start.time) : undefined;
    const signal = options.signal;
    if (signal?.aborted) {
      this.abort.abort();
    }
    signal?.addEventListener("abort", () => this.abort.abort(), {
      once: true,
      signal: this.abort.signal,
    });
  }

  /** Opens the call from `start`. */
  protected abstract open(start: StartCase, signal: AbortSignal): AsyncIterable<M>;

  /** The item of a message; undefined for a checkpoint or an item the stream drops. */
  protected abstract item(message: M, token: ResumeToken): T | undefined;

  /** Cancels the call and ends the iteration. */
  close(): void {
    this.abort.abort();
  }

  /** Where the next call starts: the latest token, else the stream's start. */
  private startCase(): StartCase {
    if (this.resumeToken !== undefined) {
      return { case: "resumeToken", value: this.resumeToken };
    }
    return this.start.from === "time"
      ? { case: "startTime", value: timestampFromDate(this.start.time) }
      : { case: "latest", value: {} };
  }

  /** The start time's filter: whether `at` is at or after it (true without one). */
  protected atOrAfter(at: Timestamp | undefined): boolean {
    const since = this.since;
    if (since === undefined) {
      return true;
    }
    const seconds = at?.seconds ?? 0n;
    const nanos = at?.nanos ?? 0;
    return seconds > since.seconds || (seconds === since.seconds && nanos >= since.nanos);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    const signal = this.abort.signal;
    let failures = 0;
    let firstFailed = 0;
    try {
      while (!signal.aborted) {
        try {
          for await (const message of this.open(this.startCase(), signal)) {
            failures = 0;
            this.resumeToken = message.resumeToken as ResumeToken;
            const item = this.item(message, this.resumeToken);
            if (item !== undefined) {
              yield item;
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
