/** StreamAnomalies as an async iterable that resumes by itself after a disconnect. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Client } from "@connectrpc/connect";

import {
  AnomalyService,
  type Anomaly as WireAnomaly,
  type StreamAnomaliesResponse,
} from "./gen/featurestore/v1/anomaly_service_pb.js";
import {
  ResumableStream,
  type ResumeToken,
  type Start,
  type StartCase,
  type StreamOptions,
} from "./resumable.js";
import { timestampMicros } from "./values.js";

export { resumeToken, type ResumeToken, type Start, type StreamOptions } from "./resumable.js";

/** Only anomalies of these symbols (all when empty), scoring at least minScore (when set). */
export interface AnomalyFilter {
  symbols?: readonly string[];
  minScore?: number;
}

/** An anomaly scored by a model, with the token that resumes just after it. */
export interface Anomaly {
  readonly id: string;
  readonly symbol: string;
  /** The event time to the millisecond (a Date holds no more): `eventTimeMicros` is exact. */
  readonly eventTime: Date;
  /** The event time in microseconds since the Unix epoch, as the server holds it. */
  readonly eventTimeMicros: bigint;
  readonly score: number;
  readonly threshold?: number;
  readonly modelName: string;
  readonly modelVersion: string;
  readonly features: Readonly<Record<string, number>>;
  readonly detectedAt: Date;
  readonly resumeToken: ResumeToken;
}

function anomaly(a: WireAnomaly, token: ResumeToken): Anomaly {
  return {
    id: a.anomalyId,
    symbol: a.symbol,
    eventTime: a.eventTime ? timestampDate(a.eventTime) : new Date(0),
    eventTimeMicros: a.eventTime ? timestampMicros(a.eventTime) : 0n,
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
 * Iterates anomalies (`for await`); after a disconnect, reconnects with the latest token it holds
 * (see ResumableStream: backoff, `maxAttempts`, `reconnectWindowMs`, `close()`). A stream started
 * from a time keeps dropping anomalies timed before it after a reconnect.
 */
export class AnomalyStream extends ResumableStream<StreamAnomaliesResponse, Anomaly> {
  constructor(
    private readonly client: Client<typeof AnomalyService>,
    private readonly filter: AnomalyFilter,
    start: Start,
    options: StreamOptions = {},
  ) {
    super(start, options);
  }

  protected open(start: StartCase, signal: AbortSignal): AsyncIterable<StreamAnomaliesResponse> {
    const request = {
      symbols: [...(this.filter.symbols ?? [])],
      minScore: this.filter.minScore,
      start,
    };
    return this.client.streamAnomalies(request, { signal });
  }

  protected item(message: StreamAnomaliesResponse, token: ResumeToken): Anomaly | undefined {
    const a = message.anomaly;
    return a !== undefined && this.atOrAfter(a.eventTime) ? anomaly(a, token) : undefined;
  }
}
