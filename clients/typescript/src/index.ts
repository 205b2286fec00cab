/** featurestore client: a typed TypeScript (Node.js) client of the featurestore gRPC API. */
export {
  AnomalyStream,
  resumeToken,
  type Anomaly,
  type AnomalyFilter,
  type ResumeToken,
  type Start,
  type StreamOptions,
} from "./anomalies.js";
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
  FeatureStoreClientError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
} from "./errors.js";
export {
  statusFromProto,
  type EntityValue,
  type FeatureStatus,
  type FeatureValue,
  type Scalar,
} from "./values.js";
