/**
 * What the Python SDK has and this client had not: an error class per status the server sends,
 * Predict's inline features, StreamPredictions, and event times to the microsecond.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";

import { AnomalyService } from "../src/gen/featurestore/v1/anomaly_service_pb.js";
import { FeatureService } from "../src/gen/featurestore/v1/feature_service_pb.js";
import {
  PredictionService,
  type PredictRequest,
  type StreamPredictionsRequest,
} from "../src/gen/featurestore/v1/prediction_service_pb.js";
import { FeatureStatus } from "../src/gen/featurestore/v1/types_pb.js";
import {
  FailedPreconditionError,
  FeatureStoreClient,
  FeatureStoreClientError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  OutOfRangeError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnimplementedError,
  resumeToken,
} from "../src/index.js";
import { serve, type TestServer } from "./server.js";

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

async function server(routes: Parameters<typeof serve>[0]) {
  const started = await serve(routes);
  servers.push(started);
  return started;
}

const symbols = { symbol: ["IBM"] };
const at = (seconds: bigint, nanos: number) => ({ seconds, nanos });

test("each status the server sends is thrown as its class", { timeout: 10_000 }, async () => {
  const classes = new Map<Code, typeof FeatureStoreClientError>([
    [Code.OutOfRange, OutOfRangeError],
    [Code.FailedPrecondition, FailedPreconditionError],
    [Code.ResourceExhausted, ResourceExhaustedError],
    [Code.Unimplemented, UnimplementedError],
    [Code.Internal, InternalError],
    [Code.InvalidArgument, InvalidArgumentError],
    [Code.NotFound, NotFoundError],
    [Code.PermissionDenied, PermissionDeniedError],
  ]);
  const { address } = await server((router) =>
    router.service(PredictionService, {
      predict(request) {
        throw new ConnectError("scripted", Number(request.modelName) as Code);
      },
    }),
  );
  const client = new FeatureStoreClient(address);
  for (const [code, kind] of classes) {
    const error = await client.predict(String(code), symbols).catch((e: unknown) => e);
    assert.ok(error instanceof kind, `${Code[code]}: got ${String(error)}`);
    assert.equal((error as FeatureStoreClientError).constructor, kind);
    assert.equal((error as FeatureStoreClientError).code, code);
    assert.equal((error as FeatureStoreClientError).details, "scripted");
    assert.equal((error as Error).name, kind.name);
  }
});

test("inline features reach the server as doubles, null unset", { timeout: 10_000 }, async () => {
  let seen: PredictRequest | undefined;
  const { address } = await server((router) =>
    router.service(PredictionService, {
      predict(request) {
        seen = request;
        return { modelName: "m", modelVersion: "1", predictions: [] };
      },
    }),
  );
  await new FeatureStoreClient(address).predict("m", symbols, {
    alias: "challenger",
    inlineFeatures: { "bars_1m:close": [1.5, null, undefined, Number.NaN, 2] },
  });
  const values = seen?.inlineFeatures["bars_1m:close"]?.values ?? [];
  assert.deepEqual(
    values.map((v) => v.kind.case),
    ["doubleValue", undefined, undefined, "doubleValue", "doubleValue"],
  );
  assert.equal(values[0]?.kind.value, 1.5);
  assert.ok(Number.isNaN(values[3]?.kind.value));
  assert.equal(seen?.modelSelector.case, "alias");
});

test("an inline value that is not a number is refused before the call, named", async () => {
  let calls = 0;
  const { address } = await server((router) =>
    router.service(PredictionService, {
      predict() {
        calls++;
        return {};
      },
    }),
  );
  const client = new FeatureStoreClient(address);
  for (const bad of ["1.5", true, 3n, [1]]) {
    const inlineFeatures = { "bars_1m:close": [1, bad] } as unknown as Record<string, number[]>;
    await assert.rejects(client.predict("m", symbols, { inlineFeatures }), {
      name: "TypeError",
      message: `inlineFeatures[bars_1m:close][1]: a ${typeof bad} is not a number (give a number, or null for a missing value)`,
    });
  }
  const one = { "bars_1m:close": "1.5" } as unknown as Record<string, number[]>;
  await assert.rejects(client.predict("m", symbols, { inlineFeatures: one }), {
    name: "TypeError",
    message: "inlineFeatures[bars_1m:close] must be an array, not one string: wrap it in [ ]",
  });
  assert.equal(calls, 0);
});

function logged(id: string, seconds: bigint, nanos: number, token: string) {
  return {
    prediction: {
      predictionId: id,
      modelName: "m",
      modelVersion: "3",
      entity: { symbol: "IBM" },
      score: 0.75,
      features: { "bars_1m:close": 1.5 },
      featureTime: at(seconds, 123_456_000),
      responseTime: at(seconds, nanos),
    },
    resumeToken: token,
  };
}

test(
  "a prediction stream resumes with its token and keeps the start time's filter",
  { timeout: 10_000 },
  async () => {
    const since = new Date("2024-05-01T14:30:00Z");
    const s = BigInt(since.getTime() / 1000);
    const starts: string[] = [];
    const { address } = await server((router) =>
      router.service(PredictionService, {
        async *streamPredictions(request: StreamPredictionsRequest) {
          assert.equal(request.modelName, "m");
          assert.equal(request.entities.symbol?.values[0]?.kind.value, "IBM");
          starts.push(request.start.case === "resumeToken" ? `token:${request.start.value}` : String(request.start.case));
          if (request.start.case === "startTime") {
            yield logged("p1", s + 1n, 0, "t1");
            yield { resumeToken: "t2" }; // a checkpoint
            throw new ConnectError("connection reset", Code.Unavailable);
          }
          yield logged("late", s - 1n, 999_999_000, "t3");
          yield logged("p2", s, 0, "t4");
        },
      }),
    );
    const stream = new FeatureStoreClient(address).streamPredictions("m", symbols, { from: "time", time: since });
    const got = [];
    for await (const p of stream) {
      got.push(p);
    }
    assert.deepEqual(got.map((p) => p.id), ["p1", "p2"]);
    assert.deepEqual(starts, ["startTime", "token:t2"]);
    assert.equal(stream.resumeToken, "t4");
    assert.equal(stream.reconnects, 1);
    const first = got[0];
    assert.equal(first?.modelVersion, "3");
    assert.deepEqual(first?.entity, { symbol: "IBM" });
    assert.equal(first?.features["bars_1m:close"], 1.5);
    assert.equal(first?.resumeToken, "t1");
    assert.equal(first?.featureTimeMicros, (s + 1n) * 1_000_000n + 123_456n);
    assert.equal(first?.responseTime?.getTime(), since.getTime() + 1000);
  },
);

test("OUT_OF_RANGE ends a prediction stream without a retry", { timeout: 10_000 }, async () => {
  let calls = 0;
  const { address } = await server((router) =>
    router.service(PredictionService, {
      async *streamPredictions() {
        calls++;
        throw new ConnectError("resume_token: its position is gone", Code.OutOfRange);
      },
    }),
  );
  const stream = new FeatureStoreClient(address).streamPredictions("m", {}, { from: "token", token: resumeToken("old") });
  await assert.rejects(
    (async () => {
      for await (const _ of stream) {
        // nothing arrives
      }
    })(),
    OutOfRangeError,
  );
  assert.equal(calls, 1);
});

test("an entity the wire cannot carry is refused when the stream is made", () => {
  const client = new FeatureStoreClient("127.0.0.1:1");
  assert.throws(() => client.streamPredictions("m", { id: [2 ** 64] }), RangeError);
});

test("event times keep their microseconds beside the Date", { timeout: 10_000 }, async () => {
  const eventTime = at(1714573800n, 123_456_000); // 2024-05-01T14:30:00.123456Z
  const { address } = await server((router) => {
    router.service(AnomalyService, {
      async *streamAnomalies() {
        yield { anomaly: { anomalyId: "a1", eventTime }, resumeToken: "t1" };
      },
    });
    router.service(PredictionService, {
      predict() {
        return { predictions: [{ requestId: "r", featureNames: [], featureTime: eventTime }] };
      },
    });
    router.service(FeatureService, {
      getOnlineFeatures() {
        return {
          featureNames: ["bars_1m:close"],
          columns: [{ values: [{}], statuses: [FeatureStatus.PRESENT], eventTimestamps: [eventTime] }],
        };
      },
    });
  });
  const client = new FeatureStoreClient(address);
  const exact = 1714573800_123456n;
  for await (const a of client.streamAnomalies()) {
    assert.equal(a.eventTime.toISOString(), "2024-05-01T14:30:00.123Z"); // unchanged
    assert.equal(a.eventTimeMicros, exact);
  }
  const scored = await client.predict("m", symbols);
  assert.equal(scored.predictions[0]?.featureTimeMicros, exact);
  const online = await client.getOnlineFeatures({ refs: ["bars_1m:close"] }, symbols);
  assert.equal(online.features.get("bars_1m:close")?.[0]?.eventTimeMicros, exact);
});
