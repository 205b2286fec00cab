/**
 * The client: one HTTP/2 connection speaking the gRPC protocol (Connect-ES's Node transport), the
 * four services' generated clients, and typed helpers over them.
 */
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { AnomalyStream, type AnomalyFilter, type Start, type StreamOptions } from "./anomalies.js";
import { DeadlineExceededError, fromCallError } from "./errors.js";
import { AnomalyService } from "./gen/featurestore/v1/anomaly_service_pb.js";
import { DatasetService } from "./gen/featurestore/v1/dataset_service_pb.js";
import { FeatureService } from "./gen/featurestore/v1/feature_service_pb.js";
import { PredictionService } from "./gen/featurestore/v1/prediction_service_pb.js";
import { inlineFeatureLists, PredictionStream, type PredictOptions } from "./predictions.js";
import {
  eventTime,
  eventTimeMicros,
  scalar,
  statusFromProto,
  valueLists,
  type EntityValue,
  type FeatureValue,
} from "./values.js";

export interface ClientOptions {
  /**
   * Use TLS (https) instead of plaintext HTTP/2: `true` trusts Node's default CAs; `{ ca }` trusts
   * these PEM certificates instead, for a server whose certificate comes from a private CA (the
   * Python SDK's `root_certificates`).
   */
  tls?: boolean | { ca: string | Buffer };
  /**
   * A bearer token, sent as `authorization: Bearer <token>` with every call (plaintext too, for a
   * loopback server; elsewhere use `tls`, or it travels in clear).
   */
  token?: string;
  /**
   * Default timeout of unary calls and exports, in milliseconds, retries included: one deadline
   * across all attempts (5 s), as the Python SDK's `timeout_s` and the Go client's `DefaultTimeout`.
   */
  timeoutMs?: number;
  /**
   * Attempts of a unary call or an export that gets UNAVAILABLE, the first included (4); 1
   * disables retries.
   */
  maxAttempts?: number;
}

/** Features named one by one ("view:feature") or by a feature service. */
export type FeatureSelector = { refs: readonly string[] } | { service: string };

/** The answer of getOnlineFeatures: one row per entity, in request order. */
export interface OnlineFeatures {
  readonly entities: Record<string, readonly EntityValue[]>;
  /** "view:feature", in the server's order. */
  readonly names: readonly string[];
  /** Name to one value per entity row. */
  readonly features: ReadonlyMap<string, readonly FeatureValue[]>;
}

/** The score of one entity row and the features the model saw (only PRESENT ones as values). */
export interface Prediction {
  readonly requestId: string;
  readonly score: number;
  readonly features: ReadonlyMap<string, FeatureValue>;
  /** Event time of the newest feature row used (to the ms; a Date holds no more). */
  readonly featureTime?: Date;
  /** The same in microseconds since the Unix epoch, exact. */
  readonly featureTimeMicros?: bigint;
}

export interface Predictions {
  readonly modelName: string;
  /** The registry version that scored (the alias's at the time of the call). */
  readonly modelVersion: string;
  readonly predictions: readonly Prediction[];
}

/** A point-in-time training set: features for every symbol at every step in [start, end). */
export interface ExportRequest {
  features: FeatureSelector;
  symbols: readonly string[];
  start: Date;
  end: Date;
  stepMs: number;
  /** Label columns this far ahead; none when unset. */
  labelHorizonMs?: number;
  /** "view__feature" column names. */
  fullFeatureNames?: boolean;
}

/** The export: one Arrow IPC stream (read it with apache-arrow's tableFromIPC). */
export interface Export {
  readonly arrowIpc: Uint8Array;
  readonly rows: number;
}

function selector(features: FeatureSelector) {
  return "service" in features
    ? { case: "featureService" as const, value: features.service }
    : { case: "features" as const, value: { features: [...features.refs] } };
}

export class FeatureStoreClient {
  /** The generated clients, for what the helpers do not cover. */
  readonly features: Client<typeof FeatureService>;
  readonly predictions: Client<typeof PredictionService>;
  readonly anomalies: Client<typeof AnomalyService>;
  readonly datasets: Client<typeof DatasetService>;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;

  /** A client of the server at `target` ("host:port"). */
  constructor(target: string, options: ClientOptions = {}) {
    const interceptors: Interceptor[] = [];
    const token = options.token;
    if (token !== undefined) {
      interceptors.push((next) => (request) => {
        request.header.set("authorization", `Bearer ${token}`);
        return next(request);
      });
    }
    const tls = options.tls ?? false;
    const transport = createGrpcTransport({
      baseUrl: `${tls ? "https" : "http"}://${target}`,
      nodeOptions: typeof tls === "object" ? { ca: tls.ca } : undefined,
      interceptors,
      // While a call is open (a quiet anomaly stream), ping after 30 s without a frame and drop
      // the connection when no answer comes within 10 s: a connection that died without a reset
      // fails the call instead of holding it for ever (as the Python SDK; the server allows
      // pings down to every 10 s).
      pingIntervalMs: 30_000,
      pingTimeoutMs: 10_000,
    });
    this.features = createClient(FeatureService, transport);
    this.predictions = createClient(PredictionService, transport);
    this.anomalies = createClient(AnomalyService, transport);
    this.datasets = createClient(DatasetService, transport);
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.maxAttempts = options.maxAttempts ?? 4;
  }

  /** Latest values of the selected features for the entities (join key to one value per row). */
  async getOnlineFeatures(
    features: FeatureSelector,
    entities: Record<string, readonly EntityValue[]>,
  ): Promise<OnlineFeatures> {
    const request = { featureSelector: selector(features), entities: valueLists(entities) };
    const response = await this.withRetries(this.timeoutMs, (timeoutMs) =>
      this.features.getOnlineFeatures(request, { timeoutMs }),
    );
    const columns = new Map<string, FeatureValue[]>();
    response.columns.forEach((column, i) => {
      const values = column.statuses.map((status, row) => ({
        value: scalar(column.values[row]),
        status: statusFromProto(status),
        eventTime: eventTime(column.eventTimestamps[row]),
        eventTimeMicros: eventTimeMicros(column.eventTimestamps[row]),
      }));
      columns.set(response.featureNames[i] ?? `column ${i}`, values);
    });
    return { entities, names: response.featureNames, features: columns };
  }

  /**
   * Scores the entities with a model (alias "champion" unless `alias` or `version` is given), its
   * features read online except `which.inlineFeatures`.
   */
  async predict(
    model: string,
    entities: Record<string, readonly EntityValue[]>,
    which: PredictOptions = {},
  ): Promise<Predictions> {
    const modelSelector =
      which.version !== undefined
        ? { case: "version" as const, value: which.version }
        : which.alias !== undefined
          ? { case: "alias" as const, value: which.alias }
          : { case: undefined };
    const request = {
      modelName: model,
      modelSelector,
      entities: valueLists(entities),
      inlineFeatures: inlineFeatureLists(which.inlineFeatures),
    };
    // One idempotency key per call, sent again on each of its retries: the server derives the
    // prediction ids from it, so a call retried after its answer was lost is logged only once.
    const headers = { "idempotency-key": crypto.randomUUID().replace(/-/g, "") };
    const response = await this.withRetries(this.timeoutMs, (timeoutMs) =>
      this.predictions.predict(request, { timeoutMs, headers }),
    );
    for (const p of response.predictions) {
      const counts = [p.featureNames.length, p.featureValues.length, p.featureStatuses.length];
      if (new Set(counts).size > 1) {
        // A server that breaks the API's contract: as the Python and Go clients, say so.
        throw new Error(
          `featurestore: prediction ${p.requestId} has ${counts[0]} feature names, ` +
            `${counts[1]} values and ${counts[2]} statuses`,
        );
      }
    }
    return {
      modelName: response.modelName,
      modelVersion: response.modelVersion,
      predictions: response.predictions.map((p) => ({
        requestId: p.requestId,
        score: p.score,
        features: new Map(
          p.featureNames.map((name, i) => [
            name,
            {
              value: scalar(p.featureValues[i]),
              status: statusFromProto(p.featureStatuses[i] ?? 0),
            },
          ]),
        ),
        featureTime: eventTime(p.featureTime),
        featureTimeMicros: eventTimeMicros(p.featureTime),
      })),
    };
  }

  /**
   * A point-in-time training set, its Arrow IPC pieces put back together. The whole export runs
   * within `timeoutMs` (the client's unless given here), retries included. It is retried on
   * UNAVAILABLE as a whole, as the Python SDK retries it: the pieces of a failed attempt are
   * dropped, and nothing reaches the caller before the last piece has arrived.
   */
  async exportTrainingDataset(
    request: ExportRequest,
    call: { timeoutMs?: number } = {},
  ): Promise<Export> {
    const message = {
      featureSelector: selector(request.features),
      entityRows: {
        case: "timeGrid" as const,
        value: {
          symbols: [...request.symbols],
          startTime: timestampFromDate(request.start),
          endTime: timestampFromDate(request.end),
          step: durationFromMs(request.stepMs),
        },
      },
      labelHorizon:
        request.labelHorizonMs === undefined ? undefined : durationFromMs(request.labelHorizonMs),
      fullFeatureNames: request.fullFeatureNames ?? false,
    };
    return this.withRetries(call.timeoutMs ?? this.timeoutMs, async (timeoutMs) => {
      const pieces: Uint8Array[] = [];
      let rows = 0;
      for await (const piece of this.datasets.exportTrainingDataset(message, { timeoutMs })) {
        pieces.push(piece.arrowIpc);
        rows += Number(piece.rowCount);
      }
      return { arrowIpc: Buffer.concat(pieces), rows };
    });
  }

  /**
   * Anomalies that pass `filter`, from `start`; resumes by itself with its latest token. The
   * stream has no deadline: end it with `close()`, `options.signal` or by leaving the loop.
   */
  streamAnomalies(
    filter: AnomalyFilter = {},
    start: Start = { from: "now" },
    options: StreamOptions = {},
  ): AnomalyStream {
    return new AnomalyStream(this.anomalies, filter, start, options);
  }

  /**
   * The predictions of every version of `model` as they are logged (by predict and by the
   * prediction feed), from `start`; only those of `entities` (join key to values) when given.
   * Resumes by itself with its latest token, as streamAnomalies. The stream has no deadline.
   *
   * @throws RangeError An entity value the wire cannot carry, named (before any call).
   */
  streamPredictions(
    model: string,
    entities: Record<string, readonly EntityValue[]> = {},
    start: Start = { from: "now" },
    options: StreamOptions = {},
  ): PredictionStream {
    return new PredictionStream(this.predictions, model, entities, start, options);
  }

  /**
   * Runs `attempt(remainingMs)` until it succeeds, fails with a code other than UNAVAILABLE, has
   * run `maxAttempts` times or the deadline `timeoutMs` from now passes (then it throws
   * DeadlineExceededError): full-jitter backoff from 50 ms, doubling, at most 2 s, as the Python
   * SDK's call_with_retries.
   */
  private async withRetries<T>(
    timeoutMs: number,
    attempt: (remainingMs: number) => Promise<T>,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let number = 1; ; number++) {
      try {
        return await attempt(Math.max(1, deadline - Date.now()));
      } catch (error) {
        const unavailable = error instanceof ConnectError && error.code === Code.Unavailable;
        if (!unavailable || number >= this.maxAttempts) {
          throw fromCallError(error);
        }
        const pause = Math.random() * Math.min(2000, 50 * 2 ** (number - 1));
        if (Date.now() + pause >= deadline) {
          throw new DeadlineExceededError(
            Code.DeadlineExceeded,
            `no answer within ${timeoutMs} ms (${number} attempts; the last: ${error.rawMessage})`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }
}
