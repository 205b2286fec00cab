/**
 * The README's example: online features with their statuses, a prediction, a training set export
 * and live anomalies resumed by token, against a running server.
 *
 *     npm run build && node dist/examples/quickstart.js --target 127.0.0.1:50151 --symbols QNHI,BA
 *
 * `--token` (default: $FEATURESTORE_TOKEN) is the bearer token, when the server wants one.
 *
 * Each step prints one JSON line. Options name the model, the feature service, the export window
 * and where the anomaly stream starts (--anomaly-start or --resume-token), so the same program
 * runs against `make run` and against the integration tests' data.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { FeatureStoreClient, NotFoundError, resumeToken, type Start } from "../src/index.js";

const end = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const { values: args } = parseArgs({
  options: {
    target: { type: "string", default: "127.0.0.1:50151" },
    symbols: { type: "string", default: "QNHI,BA" }, // the most traded of make run's synthetic market
    features: { type: "string", default: "bars_1m:close,rolling_1m:vwap_5m" },
    model: { type: "string", default: "featurestore-direction" },
    "feature-service": { type: "string", default: "market_features_v1" },
    "export-start": { type: "string", default: new Date(end.getTime() - 3_600_000).toISOString() },
    "export-end": { type: "string", default: end.toISOString() },
    "step-seconds": { type: "string", default: "60" },
    "label-horizon-seconds": { type: "string", default: "300" },
    "export-out": { type: "string" },
    "anomaly-start": { type: "string" },
    "resume-token": { type: "string" },
    "min-score": { type: "string", default: "0" },
    "max-anomalies": { type: "string", default: "5" },
    "watch-seconds": { type: "string", default: "10" },
    token: { type: "string", default: process.env.FEATURESTORE_TOKEN },
  },
});

function emit(line: Record<string, unknown>): void {
  const bigints = (_key: string, value: unknown) =>
    typeof value === "bigint" ? Number(value) : value;
  console.log(JSON.stringify(line, bigints));
}

async function main(): Promise<void> {
  const client = new FeatureStoreClient(args.target, {
    timeoutMs: 30_000,
    token: args.token || undefined,
  });
  const symbols = args.symbols.split(",");

  // 1. Online features: a value, a status and an event time per feature and entity.
  const online = await client.getOnlineFeatures(
    { refs: args.features.split(",") },
    { symbol: symbols },
  );
  const rows = symbols.map((symbol, i) => {
    const row: Record<string, unknown> = { symbol };
    for (const name of online.names) {
      const v = online.features.get(name)?.[i];
      row[name] = { value: v?.value, status: v?.status, event_time: v?.eventTime };
    }
    return row;
  });
  emit({ step: "online", names: online.names, rows });

  // 2. A prediction with the model's "champion" version; features are read online.
  try {
    const scored = await client.predict(args.model, { symbol: symbols });
    emit({
      step: "predict",
      model_version: scored.modelVersion,
      scores: scored.predictions.map((p) => p.score),
      statuses: scored.predictions.map((p) =>
        Object.fromEntries([...p.features].map(([name, v]) => [name, v.status])),
      ),
    });
  } catch (error) {
    if (!(error instanceof NotFoundError)) {
      throw error;
    }
    emit({ step: "predict", error: "not_found", details: error.details });
  }

  // 3. A point-in-time training set as one Arrow IPC stream.
  try {
    const exported = await client.exportTrainingDataset({
      features: { service: args["feature-service"] },
      symbols,
      start: new Date(args["export-start"]),
      end: new Date(args["export-end"]),
      stepMs: Number(args["step-seconds"]) * 1000,
      labelHorizonMs: Number(args["label-horizon-seconds"]) * 1000 || undefined,
    });
    if (args["export-out"] !== undefined) {
      writeFileSync(args["export-out"], exported.arrowIpc);
    }
    emit({ step: "export", rows: exported.rows, file: args["export-out"] ?? "" });
  } catch (error) {
    emit({ step: "export", error: String(error) });
  }

  // 4. Live anomalies. The stream reconnects by itself with its latest token; keep
  //    stream.resumeToken to continue later exactly where this left off (--resume-token).
  const start: Start =
    args["resume-token"] !== undefined
      ? { from: "token", token: resumeToken(args["resume-token"]) }
      : args["anomaly-start"] !== undefined
        ? { from: "time", time: new Date(args["anomaly-start"]) }
        : { from: "now" };
  const stream = client.streamAnomalies({ symbols, minScore: Number(args["min-score"]) }, start);
  const timer = setTimeout(() => stream.close(), Number(args["watch-seconds"]) * 1000);
  let count = 0;
  for await (const anomaly of stream) {
    count++;
    emit({
      step: "anomaly",
      id: anomaly.id,
      symbol: anomaly.symbol,
      score: anomaly.score,
      token: anomaly.resumeToken,
    });
    if (count >= Number(args["max-anomalies"])) {
      break;
    }
  }
  clearTimeout(timer);
  stream.close();
  emit({ step: "anomalies", count, resume_token: stream.resumeToken ?? "" });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
