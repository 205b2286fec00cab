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
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// ResumeToken is an opaque stream position: a stream started from it continues exactly after the
// message that carried it, neither repeating nor skipping an anomaly. Store it as a string.
type ResumeToken string

// Start says where a stream begins: [FromNow], [FromTime] or [FromToken].
type Start struct {
	time  *time.Time
	token ResumeToken
}

// FromNow starts with the anomalies that arrive after the call.
func FromNow() Start { return Start{} }

// FromTime starts with the anomalies whose event time is at or after t.
func FromTime(t time.Time) Start { return Start{time: &t} }

// FromToken continues just after the message that carried token.
func FromToken(token ResumeToken) Start { return Start{token: token} }

// AnomalyFilter keeps only some anomalies: of these Symbols (all when empty), scoring at least
// MinScore (every score when nil).
type AnomalyFilter struct {
	Symbols  []string
	MinScore *float64
}

// Anomaly is an anomaly scored by a model, with the token that resumes just after it.
type Anomaly struct {
	ID           string
	Symbol       string
	EventTime    time.Time
	Score        float64
	Threshold    *float64 // when the model has one
	ModelName    string
	ModelVersion string
	Features     map[string]float64
	DetectedAt   time.Time
	ResumeToken  ResumeToken
}

// resumable are the codes after which the stream reconnects (as the Python SDK's stream does).
var resumable = map[codes.Code]bool{codes.Unavailable: true, codes.ResourceExhausted: true, codes.Internal: true}

// AnomalyStream yields anomalies ([AnomalyStream.Next]); after a disconnect it reconnects with
// the latest token it holds, so nothing is repeated or skipped. Checkpoints (a token without an
// anomaly) move the token without being returned. Close it (or cancel its context) to end it.
type AnomalyStream struct {
	client      featurestorev1.AnomalyServiceClient
	ctx         context.Context
	cancel      context.CancelFunc
	request     *featurestorev1.StreamAnomaliesRequest
	call        grpc.ServerStreamingClient[featurestorev1.StreamAnomaliesResponse]
	token       ResumeToken
	failures    int
	firstFailed time.Time // when the first of the failures in a row happened
	MaxAttempts int       // connections in a row that must fail before Next returns the error (4)
	// ReconnectWindow is how long a stream keeps reconnecting after its connection went (30 s):
	// Next returns the error only once MaxAttempts connections in a row failed and the first of
	// them failed longer ago than this, so a server that restarts within it loses nothing.
	ReconnectWindow time.Duration
	Reconnects      int // how many times the stream reconnected
}

// StreamAnomalies opens a stream of the anomalies that pass filter, from start.
func (c *Client) StreamAnomalies(ctx context.Context, filter AnomalyFilter, start Start) *AnomalyStream {
	req := &featurestorev1.StreamAnomaliesRequest{Symbols: filter.Symbols, MinScore: filter.MinScore}
	switch {
	case start.token != "":
		req.Start = &featurestorev1.StreamAnomaliesRequest_ResumeToken{ResumeToken: string(start.token)}
	case start.time != nil:
		req.Start = &featurestorev1.StreamAnomaliesRequest_StartTime{StartTime: timestamppb.New(*start.time)}
	default:
		req.Start = &featurestorev1.StreamAnomaliesRequest_Latest{Latest: &emptypb.Empty{}}
	}
	ctx, cancel := context.WithCancel(ctx)
	return &AnomalyStream{client: c.Anomalies, ctx: ctx, cancel: cancel, request: req, token: start.token,
		MaxAttempts: 4, ReconnectWindow: 30 * time.Second}
}

// wanted applies the request's start_time filter (event time at or after it) again: a reconnect
// sends the token in its place (start is a oneof), and the server then no longer applies it.
func (s *AnomalyStream) wanted(a *featurestorev1.Anomaly) bool {
	since := s.request.GetStartTime()
	if since == nil {
		return true
	}
	at := a.GetEventTime()
	return at.GetSeconds() > since.GetSeconds() ||
		(at.GetSeconds() == since.GetSeconds() && at.GetNanos() >= since.GetNanos())
}

// ResumeToken is the latest token received (or the one started from): where a new stream would
// continue. Empty until the first message.
func (s *AnomalyStream) ResumeToken() ResumeToken { return s.token }

// Close cancels the call; Next then returns the context's error (context.Canceled).
func (s *AnomalyStream) Close() { s.cancel() }

// Next blocks until the next anomaly. It returns io.EOF when the server ends the stream, and an
// *Error once MaxAttempts connections in a row failed over more than ReconnectWindow, or the
// status is not worth a retry. When
// the context's deadline passes, the error matches [ErrDeadlineExceeded], as a unary call's does.
func (s *AnomalyStream) Next() (*Anomaly, error) {
	for {
		if s.call == nil {
			req := proto.Clone(s.request).(*featurestorev1.StreamAnomaliesRequest)
			if s.token != "" {
				req.Start = &featurestorev1.StreamAnomaliesRequest_ResumeToken{ResumeToken: string(s.token)}
			}
			call, err := s.client.StreamAnomalies(s.ctx, req)
			if err != nil {
				if err := s.failed(err); err != nil {
					return nil, err
				}
				continue
			}
			s.call = call
		}
		message, err := s.call.Recv()
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		if err != nil {
			s.call = nil
			if err := s.failed(err); err != nil {
				return nil, err
			}
			continue
		}
		s.failures = 0
		s.token = ResumeToken(message.GetResumeToken())
		if a := message.GetAnomaly(); a != nil && s.wanted(a) {
			return anomaly(a, s.token), nil
		}
	}
}

// failed decides after a failed connection: nil to reconnect (after a backoff), else the error.
func (s *AnomalyStream) failed(err error) error {
	if s.ctx.Err() != nil {
		return s.ended()
	}
	s.failures++
	if s.failures == 1 {
		s.firstFailed = time.Now()
	}
	gaveUp := s.failures >= s.MaxAttempts && time.Since(s.firstFailed) >= s.ReconnectWindow
	if !resumable[status.Code(err)] || gaveUp {
		return fromRPC(err)
	}
	ceiling := min(2*time.Second, 50*time.Millisecond<<min(s.failures-1, 6))
	select {
	case <-time.After(rand.N(ceiling) + time.Millisecond):
	case <-s.ctx.Done():
		return s.ended()
	}
	s.Reconnects++
	return nil
}

// ended is the error of a stream whose context is done: an *Error for a deadline (as grpc-go
// reports a unary call's), else the context's error.
func (s *AnomalyStream) ended() error {
	if errors.Is(s.ctx.Err(), context.DeadlineExceeded) {
		return fromRPC(status.FromContextError(s.ctx.Err()).Err())
	}
	return s.ctx.Err()
}

func anomaly(a *featurestorev1.Anomaly, token ResumeToken) *Anomaly {
	return &Anomaly{
		ID:           a.GetAnomalyId(),
		Symbol:       a.GetSymbol(),
		EventTime:    a.GetEventTime().AsTime(),
		Score:        a.GetScore(),
		Threshold:    a.Threshold,
		ModelName:    a.GetModelName(),
		ModelVersion: a.GetModelVersion(),
		Features:     a.GetFeatures(),
		DetectedAt:   a.GetDetectedAt().AsTime(),
		ResumeToken:  token,
	}
}
