/** Predict sends one idempotency key per call, the same on every retry of it; a read sends none. */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { Code, ConnectError } from "@connectrpc/connect";

import { FeatureService } from "../src/gen/featurestore/v1/feature_service_pb.js";
import { PredictionService } from "../src/gen/featurestore/v1/prediction_service_pb.js";
import { FeatureStoreClient } from "../src/index.js";
import { serve, type TestServer } from "./server.js";

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

const FAILURES = 2; // UNAVAILABLE answers before each call's attempt that succeeds

/** A server failing the first attempts of each call, as when the answer was lost on its way. */
async function flaky() {
  const keys: (string | null)[] = [];
  const attempt = (header: Headers) => {
    keys.push(header.get("idempotency-key"));
    if (keys.length % (FAILURES + 1) !== 0) {
      throw new ConnectError("connection lost after the answer", Code.Unavailable);
    }
  };
  const started = await serve((router) => {
    router.service(PredictionService, {
      predict: (_, context) => {
        attempt(context.requestHeader);
        return { modelName: "m", modelVersion: "1", predictions: [] };
      },
    });
    router.service(FeatureService, {
      getOnlineFeatures: (_, context) => {
        attempt(context.requestHeader);
        return { featureNames: [], columns: [] };
      },
    });
  });
  servers.push(started);
  return { address: started.address, keys };
}

test("each predict call sends one key, the same on every retry", { timeout: 10_000 }, async () => {
  const { address, keys } = await flaky();
  const client = new FeatureStoreClient(address);
  for (let call = 0; call < 2; call++) {
    assert.equal((await client.predict("m", { symbol: ["A"] })).modelVersion, "1");
  }
  assert.equal(keys.length, 2 * (FAILURES + 1));
  const first = keys.slice(0, FAILURES + 1);
  const second = keys.slice(FAILURES + 1);
  for (const attempts of [first, second]) {
    assert.match(attempts[0] ?? "", /^[0-9a-f]{32}$/);
    assert.deepEqual(attempts, Array(FAILURES + 1).fill(attempts[0]));
  }
  assert.notEqual(first[0], second[0]);
});

test("a read sends no idempotency key", { timeout: 10_000 }, async () => {
  const { address, keys } = await flaky();
  await new FeatureStoreClient(address).getOnlineFeatures({ refs: [] }, { symbol: ["A"] });
  assert.deepEqual(keys, Array(FAILURES + 1).fill(null));
});
