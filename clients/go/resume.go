package featurestore

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The resume loop that StreamAnomalies and StreamPredictions share: both send a resume token with
// every message (checkpoints carry nothing else), and a call that starts from the latest token
// received continues exactly after it. A request's start is a oneof, so a reconnect sends the
// token in place of a start_time, whose filter the server then no longer applies: each stream
// applies it again to what it returns (atOrAfter).

// resumableCodes are the codes after which a stream reconnects (as the Python SDK's stream does).
var resumableCodes = map[codes.Code]bool{codes.Unavailable: true, codes.ResourceExhausted: true, codes.Internal: true}

// tokened is a stream's response: an item or a checkpoint, and the token that resumes after it.
type tokened interface{ GetResumeToken() string }

// receiver is an open server stream (grpc.ServerStreamingClient).
type receiver[M tokened] interface{ Recv() (M, error) }

// resumable is the state of a stream that reconnects with the latest token it holds. A stream type
// embeds it: its exported fields and methods are the stream's.
type resumable[M tokened] struct {
	ctx         context.Context
	cancel      context.CancelFunc
	open        func(ctx context.Context, token ResumeToken) (receiver[M], error)
	call        receiver[M]
	token       ResumeToken
	since       *timestamppb.Timestamp // the start_time the stream was opened with, if any
	failures    int
	firstFailed time.Time // when the first of the failures in a row happened
	MaxAttempts int       // connections in a row that must fail before Next returns the error (4)
	// ReconnectWindow is how long a stream keeps reconnecting after its connection went (30 s):
	// Next returns the error only once MaxAttempts connections in a row failed and the first of
	// them failed longer ago than this, so a server that restarts within it loses nothing.
	ReconnectWindow time.Duration
	Reconnects      int // how many times the stream reconnected
}

// newResumable is the loop of a stream whose first call sends req from start and whose reconnects
// send a copy of it from the latest token; call is the generated client's method
// (c.Anomalies.StreamAnomalies). A caller names M, the response type: Go does not infer it from
// S's constraint.
func newResumable[M tokened, R proto.Message, S receiver[M]](ctx context.Context, req R, start Start, call func(context.Context, R, ...grpc.CallOption) (S, error)) resumable[M] {
	setStart(req, start)
	open := func(ctx context.Context, token ResumeToken) (receiver[M], error) {
		this := req
		if token != "" {
			this = proto.Clone(req).(R)
			setStart(this, FromToken(token))
		}
		return call(ctx, this)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := resumable[M]{ctx: ctx, cancel: cancel, open: open, token: start.token, MaxAttempts: 4, ReconnectWindow: 30 * time.Second}
	if start.token == "" && start.time != nil {
		r.since = timestamppb.New(*start.time)
	}
	return r
}

// setStart sets a stream request's start oneof, which StreamAnomaliesRequest and
// StreamPredictionsRequest declare alike (latest, start_time, resume_token), by its field names (as
// the Python SDK's set_start does): from the token when there is one, else from the time, else
// from now. Setting one member of the oneof clears the others.
func setStart(req proto.Message, start Start) {
	m := req.ProtoReflect()
	fields := m.Descriptor().Fields()
	switch {
	case start.token != "":
		m.Set(fields.ByName("resume_token"), protoreflect.ValueOfString(string(start.token)))
	case start.time != nil:
		m.Set(fields.ByName("start_time"), protoreflect.ValueOfMessage(timestamppb.New(*start.time).ProtoReflect()))
	default:
		m.Set(fields.ByName("latest"), protoreflect.ValueOfMessage((&emptypb.Empty{}).ProtoReflect()))
	}
}

// ResumeToken is the latest token received (or the one started from): where a new stream would
// continue. Empty until the first message.
func (r *resumable[M]) ResumeToken() ResumeToken { return r.token }

// Close cancels the call; Next then returns the context's error (context.Canceled).
func (r *resumable[M]) Close() { r.cancel() }

// next blocks until the next message, checkpoints included, and keeps its token.
func (r *resumable[M]) next() (M, error) {
	var none M
	for {
		if r.call == nil {
			call, err := r.open(r.ctx, r.token)
			if err != nil {
				if err := r.failed(err); err != nil {
					return none, err
				}
				continue
			}
			r.call = call
		}
		message, err := r.call.Recv()
		if errors.Is(err, io.EOF) {
			return none, io.EOF
		}
		if err != nil {
			r.call = nil
			if err := r.failed(err); err != nil {
				return none, err
			}
			continue
		}
		r.failures = 0
		r.token = ResumeToken(message.GetResumeToken())
		return message, nil
	}
}

// nextItem blocks until the next message that carries an item (item gives it; nil in a
// checkpoint) timed (at) at or after the stream's start_time, kept after a reconnect, and returns
// it converted, with the token that resumes after it. Both streams' Next.
func nextItem[M tokened, W any, I any](r *resumable[M], item func(M) *W, at func(*W) *timestamppb.Timestamp, convert func(*W, ResumeToken) I) (I, error) {
	for {
		message, err := r.next()
		if err != nil {
			var none I
			return none, err
		}
		if it := item(message); it != nil && r.atOrAfter(at(it)) {
			return convert(it, r.token), nil
		}
	}
}

// atOrAfter applies the stream's start_time filter: whether at is at or after it (true without one).
func (r *resumable[M]) atOrAfter(at *timestamppb.Timestamp) bool {
	since := r.since
	if since == nil {
		return true
	}
	return at.GetSeconds() > since.GetSeconds() ||
		(at.GetSeconds() == since.GetSeconds() && at.GetNanos() >= since.GetNanos())
}

// failed decides after a failed connection: nil to reconnect (after a backoff), else the error.
func (r *resumable[M]) failed(err error) error {
	if r.ctx.Err() != nil {
		return r.ended()
	}
	r.failures++
	if r.failures == 1 {
		r.firstFailed = time.Now()
	}
	gaveUp := r.failures >= r.MaxAttempts && time.Since(r.firstFailed) >= r.ReconnectWindow
	if !resumableCodes[status.Code(err)] || gaveUp {
		return fromRPC(err)
	}
	ceiling := min(2*time.Second, 50*time.Millisecond<<min(r.failures-1, 6))
	select {
	case <-time.After(rand.N(ceiling) + time.Millisecond):
	case <-r.ctx.Done():
		return r.ended()
	}
	r.Reconnects++
	return nil
}

// ended is the error of a stream whose context is done: an *Error for a deadline (as grpc-go
// reports a unary call's), else the context's error.
func (r *resumable[M]) ended() error {
	if errors.Is(r.ctx.Err(), context.DeadlineExceeded) {
		return fromRPC(status.FromContextError(r.ctx.Err()).Err())
	}
	return r.ctx.Err()
}
