package featurestore

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The errors a caller may want to tell apart, as in the Python SDK; test with errors.Is:
//
//	Error                    any failed call (Code, Details)
//	├── ErrInvalidArgument   the request is malformed; the details name the field
//	├── ErrNotFound          a feature, view, feature service or model does not exist
//	├── ErrUnauthenticated   no or a wrong bearer token
//	├── ErrPermissionDenied  the token lacks the scope the call needs (named in Details)
//	├── ErrUnavailable       the server or its backend is away (retried before returning)
//	└── ErrDeadlineExceeded  the call ran out of time
var (
	ErrInvalidArgument  = errors.New("featurestore: invalid argument")
	ErrNotFound         = errors.New("featurestore: not found")
	ErrUnauthenticated  = errors.New("featurestore: unauthenticated")
	ErrPermissionDenied = errors.New("featurestore: permission denied")
	ErrUnavailable      = errors.New("featurestore: unavailable")
	ErrDeadlineExceeded = errors.New("featurestore: deadline exceeded")
)

var byCode = map[codes.Code]error{
	codes.InvalidArgument:  ErrInvalidArgument,
	codes.NotFound:         ErrNotFound,
	codes.Unauthenticated:  ErrUnauthenticated,
	codes.PermissionDenied: ErrPermissionDenied,
	codes.Unavailable:      ErrUnavailable,
	codes.DeadlineExceeded: ErrDeadlineExceeded,
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
