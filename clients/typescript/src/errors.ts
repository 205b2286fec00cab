/**
 * The client's errors: one per gRPC status a caller may want to handle (as in the Python SDK).
 *
 *     FeatureStoreClientError        any failed call (`code`, `details`)
 *     ├── InvalidArgumentError       the request is malformed; the message names the field
 *     ├── NotFoundError              a feature, view, feature service or model does not exist
 *     ├── UnauthenticatedError       no or a wrong bearer token
 *     ├── PermissionDeniedError      the token lacks the scope the call needs (named in details)
 *     ├── UnavailableError           the server or its backend is away (retried before raising)
 *     ├── DeadlineExceededError      the call ran out of time
 *     ├── OutOfRangeError            a resume token whose position is gone (retention) or foreign
 *     ├── FailedPreconditionError    the model cannot be served as registered (output, features)
 *     ├── ResourceExhaustedError     the server runs as many exports or streams as it allows
 *     ├── UnimplementedError         the server does not offer the call (a stream it has no log for)
 *     └── InternalError              the server failed; its details say no more than that
 */
import { Code, ConnectError } from "@connectrpc/connect";

export class FeatureStoreClientError extends Error {
  constructor(
    /** The gRPC status code. */
    readonly code: Code,
    /** The server's message. */
    readonly details: string,
  ) {
    super(`${Code[code]}: ${details}`);
    this.name = new.target.name;
  }
}
export class InvalidArgumentError extends FeatureStoreClientError {}
export class NotFoundError extends FeatureStoreClientError {}
export class UnauthenticatedError extends FeatureStoreClientError {}
export class PermissionDeniedError extends FeatureStoreClientError {}
export class UnavailableError extends FeatureStoreClientError {}
export class DeadlineExceededError extends FeatureStoreClientError {}
/** Start again from a time or from now: the same token fails again. */
export class OutOfRangeError extends FeatureStoreClientError {}
export class FailedPreconditionError extends FeatureStoreClientError {}
/** The server is at its limit (`service.max_concurrent_exports`, stream subscriptions): retry later. */
export class ResourceExhaustedError extends FeatureStoreClientError {}
export class UnimplementedError extends FeatureStoreClientError {}
export class InternalError extends FeatureStoreClientError {}

const byCode = new Map<Code, typeof FeatureStoreClientError>([
  [Code.InvalidArgument, InvalidArgumentError],
  [Code.NotFound, NotFoundError],
  [Code.Unauthenticated, UnauthenticatedError],
  [Code.PermissionDenied, PermissionDeniedError],
  [Code.Unavailable, UnavailableError],
  [Code.DeadlineExceeded, DeadlineExceededError],
  [Code.OutOfRange, OutOfRangeError],
  [Code.FailedPrecondition, FailedPreconditionError],
  [Code.ResourceExhausted, ResourceExhaustedError],
  [Code.Unimplemented, UnimplementedError],
  [Code.Internal, InternalError],
]);

/** The client error for a failed call; anything that is not a call's error is returned as is. */
export function fromCallError(error: unknown): unknown {
  if (!(error instanceof ConnectError)) {
    return error;
  }
  const Kind = byCode.get(error.code) ?? FeatureStoreClientError;
  return new Kind(error.code, error.rawMessage);
}
