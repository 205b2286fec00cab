/** FeatureStoreClient against a scripted in-process server: deadlines, retries, statuses, TLS. */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";

import { DatasetService } from "../src/gen/featurestore/v1/dataset_service_pb.js";
import { FeatureService } from "../src/gen/featurestore/v1/feature_service_pb.js";
import { PredictionService } from "../src/gen/featurestore/v1/prediction_service_pb.js";
import { FeatureStatus } from "../src/gen/featurestore/v1/types_pb.js";
import {
  DeadlineExceededError,
  FeatureStoreClient,
  UnavailableError,
  type ExportRequest,
} from "../src/index.js";
import { serve, sleep, type TestServer } from "./server.js";
import { ca, serverCert, serverKey } from "./tls.js";

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

async function server(routes: (router: ConnectRouter) => void, tls?: { key: Buffer; cert: Buffer }) {
  const started = await serve(routes, tls);
  servers.push(started);
  return started;
}

const symbols = { symbol: ["A", "B", "C"] };
const exportRequest: ExportRequest = {
  features: { refs: ["bars_1m:close"] },
  symbols: ["A"],
  start: new Date(0),
  end: new Date(60_000),
  stepMs: 60_000,
};

/** Answers one column with these statuses. */
function features(statuses: number[]) {
  return (router: ConnectRouter) =>
    router.service(FeatureService, {
      getOnlineFeatures: () => ({
        featureNames: ["bars_1m:close"],
        columns: [{ values: statuses.map(() => ({})), statuses }],
      }),
    });
}

test("retries stay within timeoutMs, then DeadlineExceededError", { timeout: 10_000 }, async () => {
  let attempts = 0;
  const { address } = await server((router) =>
    router.service(FeatureService, {
      async getOnlineFeatures(_request, context) {
        attempts++;
        await sleep(400, context.signal);
        throw new ConnectError("backend away", Code.Unavailable);
      },
    }),
  );
  const client = new FeatureStoreClient(address, { timeoutMs: 500 });
  const began = Date.now();
  const error = await client.getOnlineFeatures({ refs: ["bars_1m:close"] }, symbols).catch((e: unknown) => e);
  const took = Date.now() - began;
  assert.ok(error instanceof DeadlineExceededError, `got ${String(error)}`);
  assert.ok(took < 900, `a call with timeoutMs 500 took ${took} ms (${attempts} attempts)`);
});

test("UNAVAILABLE is still retried while time is left", { timeout: 10_000 }, async () => {
  let attempts = 0;
  const { address } = await server((router) =>
    router.service(FeatureService, {
      getOnlineFeatures() {
        if (++attempts < 3) {
          throw new ConnectError("backend away", Code.Unavailable);
        }
        return { featureNames: [], columns: [] };
      },
    }),
  );
  await new FeatureStoreClient(address).getOnlineFeatures({ refs: [] }, symbols);
  assert.equal(attempts, 3);
});

test("an export honours timeoutMs", { timeout: 10_000 }, async () => {
  const { address } = await server((router) =>
    router.service(DatasetService, {
      async *exportTrainingDataset(_request, context) {
        await sleep(1000, context.signal);
        yield { arrowIpc: new Uint8Array([1]), rowCount: 1n };
      },
    }),
  );
  const client = new FeatureStoreClient(address, { timeoutMs: 300 });
  const began = Date.now();
  await assert.rejects(client.exportTrainingDataset(exportRequest), DeadlineExceededError);
  assert.ok(Date.now() - began < 800, `took ${Date.now() - began} ms`);
  // A longer timeout of its own lets the same export finish.
  const done = await client.exportTrainingDataset(exportRequest, { timeoutMs: 5000 });
  assert.equal(done.rows, 1);
});

test("an export is retried on UNAVAILABLE, as a whole", { timeout: 10_000 }, async () => {
  let attempts = 0;
  const { address } = await server((router) =>
    router.service(DatasetService, {
      async *exportTrainingDataset() {
        attempts++;
        if (attempts === 1) {
          throw new ConnectError("offline store away", Code.Unavailable);
        }
        yield { arrowIpc: new Uint8Array([1, 2]), rowCount: 2n };
        if (attempts === 2) {
          throw new ConnectError("offline store away", Code.Unavailable); // after a piece
        }
        yield { arrowIpc: new Uint8Array([3]), rowCount: 1n };
      },
    }),
  );
  const exported = await new FeatureStoreClient(address).exportTrainingDataset(exportRequest);
  assert.equal(attempts, 3);
  assert.deepEqual([...exported.arrowIpc], [1, 2, 3]); // only the last attempt's pieces
  assert.equal(exported.rows, 3);
});

test("an export that stays unavailable throws UnavailableError", { timeout: 10_000 }, async () => {
  const { address } = await server((router) =>
    router.service(DatasetService, {
      async *exportTrainingDataset() {
        throw new ConnectError("offline store away", Code.Unavailable);
      },
    }),
  );
  const client = new FeatureStoreClient(address, { maxAttempts: 2 });
  await assert.rejects(client.exportTrainingDataset(exportRequest), UnavailableError);
});

test("an unknown status number reads as not_found", { timeout: 10_000 }, async () => {
  const { address } = await server(features([FeatureStatus.PRESENT, 9, FeatureStatus.UNSPECIFIED]));
  const online = await new FeatureStoreClient(address).getOnlineFeatures({ refs: ["bars_1m:close"] }, symbols);
  const statuses = online.features.get("bars_1m:close")?.map((v) => v.status);
  assert.deepEqual(statuses, ["present", "not_found", "not_found"]);
});

test("tls: { ca } trusts a private CA", { timeout: 10_000 }, async () => {
  const { address } = await server(features([FeatureStatus.PRESENT]), {
    key: Buffer.from(serverKey),
    cert: Buffer.from(serverCert),
  });
  const trusting = new FeatureStoreClient(address, { tls: { ca }, maxAttempts: 1 });
  const online = await trusting.getOnlineFeatures({ refs: ["bars_1m:close"] }, symbols);
  assert.equal(online.features.get("bars_1m:close")?.[0]?.status, "present");
  // Node's default CAs do not know this one.
  const system = new FeatureStoreClient(address, { tls: true, maxAttempts: 1 });
  await assert.rejects(system.getOnlineFeatures({ refs: ["bars_1m:close"] }, symbols));
});

test("a prediction with fewer values than feature names is an error", async () => {
  const { address } = await server((router) =>
    router.service(PredictionService, {
      predict: () => ({
        modelName: "m",
        modelVersion: "1",
        predictions: [
          {
            requestId: "r1",
            score: 0.5,
            featureNames: ["bars_1m:close", "bars_1m:volume"],
            featureValues: [{}],
            featureStatuses: [FeatureStatus.PRESENT, FeatureStatus.PRESENT],
          },
        ],
      }),
    }),
  );
  const client = new FeatureStoreClient(address, { maxAttempts: 1 });
  await assert.rejects(client.predict("m", symbols), {
    message: "featurestore: prediction r1 has 2 feature names, 1 values and 2 statuses",
  });
});

test("an integer entity the wire cannot carry is refused before the call, named", async () => {
  const { address } = await server(features([1]));
  const client = new FeatureStoreClient(address, { maxAttempts: 1 });
  const refs = { refs: ["bars_1m:close"] };
  const cases: [bigint | number, RegExp][] = [
    [2n ** 63n, /^entities\[symbol\]\[1\]: 9223372036854775808 is outside int64$/],
    [-(2n ** 63n) - 1n, /^entities\[symbol\]\[1\]: -9223372036854775809 is outside int64$/],
    [2 ** 53 + 1, /^entities\[symbol\]\[1\]: 9007199254740992 is past Number\.MAX_SAFE_INTEGER/],
  ];
  for (const [bad, message] of cases) {
    await assert.rejects(client.getOnlineFeatures(refs, { symbol: ["A", bad] }), (error) => {
      assert.ok(error instanceof RangeError, String(error));
      assert.match(error.message, message);
      return true;
    });
    await assert.rejects(client.predict("m", { symbol: ["A", bad] }), RangeError);
  }
  // The int64 bounds themselves, and 2^53 - 1, go through.
  for (const good of [2n ** 63n - 1n, -(2n ** 63n), 2 ** 53 - 1]) {
    const online = await client.getOnlineFeatures(refs, { symbol: [good] });
    assert.equal(online.features.get("bars_1m:close")?.[0]?.status, "present");
  }
});
