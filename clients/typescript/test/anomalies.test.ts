/** AnomalyStream against a scripted in-process server: reconnects, user cancels, leaving loops. */
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

import { AnomalyService } from "../src/gen/featurestore/v1/anomaly_service_pb.js";
import { type AnomalyStream, FeatureStoreClient } from "../src/index.js";
import { aborted, serve, sleep, type TestServer } from "./server.js";

const servers: TestServer[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

/**
 * A server whose first call sends a1 and then holds the stream open; a call that resumes from t1
 * sends a2 and ends. `starts` records where each call started, `ended` when its call ended.
 */
async function holdingServer() {
  const starts: string[] = [];
  let ended = 0;
  const server = await serve((router) =>
    router.service(AnomalyService, {
      async *streamAnomalies(request, context) {
        const start = request.start.case === "resumeToken" ? `token:${request.start.value}` : "latest";
        starts.push(start);
        try {
          if (start === "token:t1") {
            yield { anomaly: { anomalyId: "a2" }, resumeToken: "t2" };
            return;
          }
          yield { anomaly: { anomalyId: "a1" }, resumeToken: "t1" };
          await aborted(context.signal);
        } finally {
          ended++;
        }
      },
    }),
  );
  servers.push(server);
  return { server, starts, ended: () => ended };
}

for (const how of ["close", "reset"] as const) {
  test(`a dropped connection (${how}) reconnects with the resume token`, { timeout: 10_000 }, async () => {
    const { server, starts } = await holdingServer();
    const stream = new FeatureStoreClient(server.address).streamAnomalies();
    const ids: string[] = [];
    for await (const a of stream) {
      ids.push(a.id);
      if (a.id === "a1") {
        server.drop(how); // the server process died: the connection goes, the server comes back
      }
    }
    assert.deepEqual(ids, ["a1", "a2"]);
    assert.deepEqual(starts, ["latest", "token:t1"]);
    assert.equal(stream.resumeToken, "t2");
    assert.equal(stream.reconnects, 1);
  });
}

const enders: [string, (stream: AnomalyStream, abort: AbortController) => void][] = [
  ["close()", (stream) => stream.close()],
  ["an aborted signal", (_, abort) => abort.abort()],
];
for (const [name, end] of enders) {
  test(`${name} ends the stream without reconnecting`, { timeout: 10_000 }, async () => {
    const { server, starts, ended } = await holdingServer();
    const abort = new AbortController();
    const stream = new FeatureStoreClient(server.address).streamAnomalies({}, { from: "now" }, {
      signal: abort.signal,
    });
    const ids: string[] = [];
    for await (const a of stream) {
      ids.push(a.id);
      setTimeout(() => end(stream, abort), 50);
    }
    assert.deepEqual(ids, ["a1"]);
    await sleep(200);
    assert.deepEqual(starts, ["latest"]);
    assert.equal(ended(), 1);
  });
}

test("leaving the loop early cancels the call", { timeout: 10_000 }, async () => {
  const { server, ended } = await holdingServer();
  const stream = new FeatureStoreClient(server.address).streamAnomalies();
  for await (const a of stream) {
    assert.equal(a.id, "a1");
    break;
  }
  for (let waited = 0; ended() === 0 && waited < 2000; waited += 20) {
    await sleep(20);
  }
  assert.equal(ended(), 1, "the server still streams 2 s after the loop was left");
});

test("a server restart is resumed with the resume token", { timeout: 20_000 }, async () => {
  const { server, starts } = await holdingServer();
  const stream = new FeatureStoreClient(server.address).streamAnomalies();
  const ids: string[] = [];
  let restarted: Promise<TestServer> | undefined;
  // The successor is closed with the others even when the stream gave up before it started.
  after(async () => servers.push(await restarted!));
  for await (const a of stream) {
    ids.push(a.id);
    if (a.id === "a1") {
      // The process stops: the port refuses connections for 2 s, then a new process takes it.
      await server.close();
      const port = Number(server.address.split(":")[1]);
      restarted = sleep(2000).then(() =>
        serve(
          (router) =>
            router.service(AnomalyService, {
              async *streamAnomalies(request) {
                starts.push(`token:${request.start.value as string}`);
                yield { anomaly: { anomalyId: "a2" }, resumeToken: "t2" };
              },
            }),
          undefined,
          port,
        ),
      );
    }
  }
  assert.deepEqual(ids, ["a1", "a2"]);
  assert.deepEqual(starts, ["latest", "token:t1"]);
  assert.equal(stream.resumeToken, "t2");
});

test("a stream from a time keeps that filter after it reconnects", { timeout: 10_000 }, async () => {
  const since = new Date("2024-05-01T14:30:00Z");
  const at = (ms: number) => timestampFromDate(new Date(since.getTime() + ms));
  const server = await serve((router) =>
    router.service(AnomalyService, {
      async *streamAnomalies(request) {
        if (request.start.case !== "resumeToken") {
          yield { anomaly: { anomalyId: "a1", eventTime: at(1000) }, resumeToken: "t1" };
          throw new ConnectError("connection reset", Code.Unavailable);
        }
        // A late anomaly, timed before the start: the server filters it only for start_time.
        yield { anomaly: { anomalyId: "late", eventTime: at(-1) }, resumeToken: "t2" };
        yield { anomaly: { anomalyId: "a2", eventTime: at(0) }, resumeToken: "t3" };
      },
    }),
  );
  servers.push(server);
  const stream = new FeatureStoreClient(server.address).streamAnomalies({}, { from: "time", time: since });
  const ids: string[] = [];
  for await (const a of stream) {
    ids.push(a.id);
    if (a.id === "a2") {
      break;
    }
  }
  assert.deepEqual(ids, ["a1", "a2"]);
  assert.equal(stream.resumeToken, "t3");
});
