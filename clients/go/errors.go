package featurestore

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The errors a caller may want to tell apart, as in the Python SDK; test with errors.Is:
//
//	Error                      any failed call (Code, Details)
//	├── ErrInvalidArgument     the request is malformed; the details name the field
//	├── ErrNotFound            a feature, view, feature service or model does not exist
//	├── ErrUnauthenticated     no or a wrong bearer token
//	├── ErrPermissionDenied    the token lacks the scope the call needs (named in Details)
//	├── ErrUnavailable         the server or its backend is away (retried before returning)
//	├── ErrDeadlineExceeded    the call ran out of time
//	├── ErrOutOfRange          a resume token whose position is gone (retention) or foreign
//	├── ErrFailedPrecondition  the model cannot be served as registered (output, features)
//	├── ErrResourceExhausted   the server runs as many exports or streams as it allows
//	├── ErrUnimplemented       the server does not offer the call (a stream it has no log for)
//	└── ErrInternal            the server failed; its details say no more than that
var (
	ErrInvalidArgument  = errors.New("featurestore: invalid argument")
	ErrNotFound         = errors.New("featurestore: not found")
	ErrUnauthenticated  = errors.New("featurestore: unauthenticated")
	ErrPermissionDenied = errors.New("featurestore: permission denied")
	ErrUnavailable      = errors.New("featurestore: unavailable")
	ErrDeadlineExceeded = errors.New("featurestore: deadline exceeded")
	// ErrOutOfRange: start again from a time or from now; the same token fails again.
	ErrOutOfRange         = errors.New("featurestore: out of range")
	ErrFailedPrecondition = errors.New("featurestore: failed precondition")
	// ErrResourceExhausted: the server is at its limit (service.max_concurrent_exports, stream
	// subscriptions); retry later.
	ErrResourceExhausted = errors.New("featurestore: resource exhausted")
	ErrUnimplemented     = errors.New("featurestore: unimplemented")
	ErrInternal          = errors.New("featurestore: internal")
)

var byCode = map[codes.Code]error{
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.NotFound:           ErrNotFound,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.PermissionDenied:   ErrPermissionDenied,
	codes.Unavailable:        ErrUnavailable,
	codes.DeadlineExceeded:   ErrDeadlineExceeded,
	codes.OutOfRange:         ErrOutOfRange,
	codes.FailedPrecondition: ErrFailedPrecondition,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.Unimplemented:      ErrUnimplemented,
	codes.Internal:           ErrInternal,
}

// Error is a call that failed with a gRPC status.
type Error struct {
	Code    codes.Code
	Details string // the server's message
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Details) }

// Is matches the sentinel of the error's code.
func (e *Error) Is(target error) bool { return byCode[e.Code] == target && target != nil }

// fromRPC turns a gRPC error into an *Error; other errors pass unchanged.
func fromRPC(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return &Error{Code: s.Code(), Details: s.Message()}
	}
	return err
}
