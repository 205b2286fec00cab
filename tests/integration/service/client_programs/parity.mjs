// The live parity check of the TypeScript client: inline features, streamPredictions, error classes.
// Run as `node parity.mjs <compiled client folder> --target ... ` (the folder holds src/index.js).
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const [folder, ...rest] = process.argv.slice(2);
const sdk = await import(pathToFileURL(`${folder}/src/index.js`).href);
const { values: args } = parseArgs({
  args: rest,
  options: {
    target: { type: "string" },
    token: { type: "string" },
    model: { type: "string" },
    symbols: { type: "string" },
    since: { type: "string" },
    count: { type: "string" },
    "expired-token": { type: "string" },
  },
});
const emit = (line) =>
  console.log(JSON.stringify(line, (_, v) => (typeof v === "bigint" ? v.toString() : v)));
const kind = (error) => (error instanceof sdk.FeatureStoreClientError ? error.constructor.name : String(error));

const client = new sdk.FeatureStoreClient(args.target, { token: args.token });
const symbols = args.symbols.split(",");
const rows = { symbol: symbols };
const inline = { "bars_1m:close": symbols.map((_, i) => (i === 0 ? 150.0 : null)) };
const scored = await client.predict(args.model, rows, { inlineFeatures: inline });
emit({
  step: "predict",
  scores: scored.predictions.map((p) => p.score),
  ids: scored.predictions.map((p) => p.requestId),
  version: scored.modelVersion,
});
const bad = await client
  .predict(args.model, rows, { inlineFeatures: { "bars_1m:close": ["abc", 1.0] } })
  .catch((e) => e);
emit({ step: "bad_inline", kind: bad.constructor.name, error: bad.message });
const unknown = await client.predict("no-such-model-x", rows).catch((e) => e);
emit({ step: "unknown_model", kind: kind(unknown), error: unknown.message });

const signal = AbortSignal.timeout(60_000);
const stream = client.streamPredictions(args.model, rows, { from: "time", time: new Date(args.since) }, { signal });
const got = [];
try {
  for await (const p of stream) {
    got.push({
      id: p.id,
      entity: p.entity,
      score: p.score,
      features: p.features,
      response_time: p.responseTime?.toISOString(),
      response_time_micros: p.responseTimeMicros,
      version: p.modelVersion,
    });
    if (got.length >= Number(args.count)) {
      break;
    }
  }
} catch (error) {
  emit({ step: "stream_error", kind: kind(error), error: String(error) });
  process.exit(1);
}
emit({ step: "stream", predictions: got, token: stream.resumeToken });
const gone = client.streamPredictions(args.model, {}, { from: "token", token: sdk.resumeToken(args["expired-token"]) });
try {
  for await (const _ of gone) {
    break;
  }
  emit({ step: "expired_token", kind: "none", error: "" });
} catch (error) {
  emit({ step: "expired_token", kind: kind(error), error: error.message });
}
