/** featurestore client: a typed TypeScript (Node.js) client of the featurestore gRPC API. */
export { AnomalyStream, type Anomaly, type AnomalyFilter } from "./anomalies.js";
export {
  FeatureStoreClient,
  type ClientOptions,
  type Export,
  type ExportRequest,
  type FeatureSelector,
  type OnlineFeatures,
  type Prediction,
  type Predictions,
} from "./client.js";
export {
  DeadlineExceededError,
  FailedPreconditionError,
  FeatureStoreClientError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  OutOfRangeError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from "./errors.js";
export {
  PredictionStream,
  type InlineFeatures,
  type LoggedPrediction,
  type PredictOptions,
} from "./predictions.js";
export { resumeToken, type ResumeToken, type Start, type StreamOptions } from "./resumable.js";
export {
  statusFromProto,
  type EntityValue,
  type FeatureStatus,
  type FeatureValue,
  type Scalar,
} from "./values.js";
