/**
 * Predictions beyond Predict's basic call: the inline features Predict may take, and
 * StreamPredictions as an async iterable that resumes by itself (the anomaly stream's loop).
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { type Client } from "@connectrpc/connect";

import {
  PredictionService,
  type LoggedPrediction as WireLoggedPrediction,
  type StreamPredictionsResponse,
} from "./gen/featurestore/v1/prediction_service_pb.js";
import { ValueListSchema, ValueSchema, type ValueList } from "./gen/featurestore/v1/types_pb.js";
import {
  ResumableStream,
  type ResumeToken,
  type Start,
  type StartCase,
  type StreamOptions,
} from "./resumable.js";
import { timestampMicros, valueLists, type EntityValue } from "./values.js";

/** Feature columns given by the caller: "view:feature" to one number per entity row. */
export type InlineFeatures = Record<string, readonly (number | null | undefined)[]>;

/** Which model version scores (alias "champion" unless `alias` or `version`), and inline features. */
export interface PredictOptions {
  alias?: string;
  version?: string;
  /**
   * Features the server then does not read from the online store, as the Python SDK's
   * `inline_features`: a number per row, or null (or undefined) for a missing one, which reaches
   * the model as NaN. Anything else is a TypeError naming it, before any call; infinity is the
   * server's INVALID_ARGUMENT.
   */
  inlineFeatures?: InlineFeatures;
}

/**
 * The wire columns of inline features (none when undefined).
 *
 * @throws TypeError A column that is not an array (one string would be sent a letter a row), or
 *   a value that is not a number or null, named as `inlineFeatures[name][row]`.
 */
export function inlineFeatureLists(features: InlineFeatures | undefined): Record<string, ValueList> {
  const lists: Record<string, ValueList> = {};
  for (const [name, column] of Object.entries(features ?? {})) {
    if (!Array.isArray(column)) {
      throw new TypeError(
        `inlineFeatures[${name}] must be an array, not one ${typeof column}: wrap it in [ ]`,
      );
    }
    const values = column.map((x: unknown, row) => {
      if (x === null || x === undefined) {
        return create(ValueSchema, {});
      }
      if (typeof x !== "number") {
        throw new TypeError(
          `inlineFeatures[${name}][${row}]: a ${typeof x} is not a number ` +
            "(give a number, or null for a missing value)",
        );
      }
      return create(ValueSchema, { kind: { case: "doubleValue", value: x } });
    });
    lists[name] = create(ValueListSchema, { values });
  }
  return lists;
}

/** A prediction as the prediction log holds it, with the token that resumes just after it. */
export interface LoggedPrediction {
  /** Predict's request id, or the feed's deterministic id. */
  readonly id: string;
  readonly modelName: string;
  readonly modelVersion: string;
  /** Join key to value, for example `{ symbol: "IBM" }`. */
  readonly entity: Readonly<Record<string, string>>;
  readonly score: number;
  /** The values the model saw by "view:feature"; a missing one is absent. */
  readonly features: Readonly<Record<string, number>>;
  /** Event time of the newest feature row used (to the ms); undefined when none had one. */
  readonly featureTime?: Date;
  /** The same in microseconds since the Unix epoch, exact. */
  readonly featureTimeMicros?: bigint;
  /** When the request arrived (the feed: when the row was read). */
  readonly requestTime?: Date;
  readonly requestTimeMicros?: bigint;
  /** When the prediction was returned (what a `{ from: "time" }` start bounds). */
  readonly responseTime?: Date;
  readonly responseTimeMicros?: bigint;
  readonly resumeToken: ResumeToken;
}

function time(t: Timestamp | undefined): Date | undefined {
  return t === undefined ? undefined : timestampDate(t);
}

function micros(t: Timestamp | undefined): bigint | undefined {
  return t === undefined ? undefined : timestampMicros(t);
}

function logged(p: WireLoggedPrediction, token: ResumeToken): LoggedPrediction {
  return {
    id: p.predictionId,
    modelName: p.modelName,
    modelVersion: p.modelVersion,
    entity: p.entity,
    score: p.score,
    features: p.features,
    featureTime: time(p.featureTime),
    featureTimeMicros: micros(p.featureTime),
    requestTime: time(p.requestTime),
    requestTimeMicros: micros(p.requestTime),
    responseTime: time(p.responseTime),
    responseTimeMicros: micros(p.responseTime),
    resumeToken: token,
  };
}

/**
 * Iterates a model's predictions as they are logged (`for await`); after a disconnect, reconnects
 * with the latest token it holds, as AnomalyStream does (backoff, `maxAttempts`,
 * `reconnectWindowMs`, `close()`). A stream started from a time keeps dropping predictions
 * answered before it after a reconnect.
 */
export class PredictionStream extends ResumableStream<StreamPredictionsResponse, LoggedPrediction> {
  private readonly entities;

  /** @throws RangeError An entity value the wire cannot carry, named (before any call). */
  constructor(
    private readonly client: Client<typeof PredictionService>,
    private readonly model: string,
    entities: Record<string, readonly EntityValue[]>,
    start: Start,
    options: StreamOptions = {},
  ) {
    super(start, options);
    this.entities = valueLists(entities);
  }

  protected open(start: StartCase, signal: AbortSignal): AsyncIterable<StreamPredictionsResponse> {
    const request = { modelName: this.model, entities: this.entities, start };
    return this.client.streamPredictions(request, { signal });
  }

  protected item(
    message: StreamPredictionsResponse,
    token: ResumeToken,
  ): LoggedPrediction | undefined {
    const p = message.prediction;
    return p !== undefined && this.atOrAfter(p.responseTime) ? logged(p, token) : undefined;
  }
}
