package featurestore_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	featurestore "github.com/featurestore/featurestore/clients/go"
	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// What the Python SDK has and this client had not: an error per status the server sends, a
// default call timeout, Predict's inline features and StreamPredictions.

// Each status the server sends matches its own sentinel, as each is its own class in Python.
func TestEveryServerStatusMatchesItsError(t *testing.T) {
	want := map[codes.Code]error{
		codes.OutOfRange:         featurestore.ErrOutOfRange,
		codes.FailedPrecondition: featurestore.ErrFailedPrecondition,
		codes.ResourceExhausted:  featurestore.ErrResourceExhausted,
		codes.Unimplemented:      featurestore.ErrUnimplemented,
		codes.Internal:           featurestore.ErrInternal,
		codes.InvalidArgument:    featurestore.ErrInvalidArgument,
		codes.NotFound:           featurestore.ErrNotFound,
		codes.PermissionDenied:   featurestore.ErrPermissionDenied,
	}
	client := serve(t, &predictionServer{predict: func(r *featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
		code, err := strconv.Atoi(r.GetModelName())
		if err != nil {
			return nil, err
		}
		return nil, status.Error(codes.Code(code), "scripted")
	}})
	for code, sentinel := range want {
		_, err := client.Predict(timeout(t, 5*time.Second), strconv.Itoa(int(code)), featurestore.ModelSelector{}, symbols)
		var e *featurestore.Error
		if !errors.Is(err, sentinel) || !errors.As(err, &e) || e.Code != code || e.Details != "scripted" {
			t.Errorf("%s: got %v; want an *Error matching %v", code, err, sentinel)
		}
		for _, other := range want {
			if other != sentinel && errors.Is(err, other) {
				t.Errorf("%s also matches %v", code, other)
			}
		}
	}
}

// deadlines records how far away each call's deadline was when it arrived (0: none; -1: a
// stream had one).
type deadlines struct {
	featurestorev1.UnimplementedPredictionServiceServer
	seen chan time.Duration
}

func (d *deadlines) Predict(ctx context.Context, _ *featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		d.seen <- 0
	} else {
		d.seen <- time.Until(deadline)
	}
	return &featurestorev1.PredictResponse{}, nil
}

func (d *deadlines) StreamPredictions(_ *featurestorev1.StreamPredictionsRequest, s grpc.ServerStreamingServer[featurestorev1.StreamPredictionsResponse]) error {
	_, ok := s.Context().Deadline()
	if ok {
		d.seen <- -1
	} else {
		d.seen <- 0
	}
	return s.Send(&featurestorev1.StreamPredictionsResponse{Prediction: &featurestorev1.LoggedPrediction{PredictionId: "p1"}, ResumeToken: "t1"})
}

// A call whose context has no deadline gets DefaultTimeout (5 s, as the Python SDK), or the one
// WithDefaultTimeout sets; a context's own deadline wins; 0 sets none; a stream gets none.
func TestDefaultTimeout(t *testing.T) {
	if featurestore.DefaultTimeout != 5*time.Second {
		t.Fatalf("DefaultTimeout %s; the Python SDK's timeout_s is 5 s", featurestore.DefaultTimeout)
	}
	cases := []struct {
		name      string
		options   []grpc.DialOption
		ctx       context.Context
		low, high time.Duration
	}{
		{"default", nil, context.Background(), 4 * time.Second, 5 * time.Second},
		{"WithDefaultTimeout(2s)", []grpc.DialOption{featurestore.WithDefaultTimeout(2 * time.Second)}, context.Background(), time.Second, 2 * time.Second},
		{"the context's deadline wins", []grpc.DialOption{featurestore.WithDefaultTimeout(2 * time.Second)}, timeout(t, 30*time.Second), 29 * time.Second, 30 * time.Second},
		{"WithDefaultTimeout(0): none", []grpc.DialOption{featurestore.WithDefaultTimeout(0)}, context.Background(), 0, 0},
	}
	for _, c := range cases {
		server := &deadlines{seen: make(chan time.Duration, 1)}
		client := serveWith(t, c.options, server)
		if _, err := client.Predict(c.ctx, "m", featurestore.ModelSelector{}, symbols); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := <-server.seen; got < c.low || got > c.high {
			t.Errorf("%s: the server saw a deadline %s away; want within [%s, %s] (0: none)", c.name, got, c.low, c.high)
		}
	}
	server := &deadlines{seen: make(chan time.Duration, 1)}
	stream, err := serveWith(t, nil, server).StreamPredictions(context.Background(), "m", nil, featurestore.FromNow())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if p, err := stream.Next(); err != nil || p.ID != "p1" {
		t.Fatalf("stream: %v %v", p, err)
	}
	if <-server.seen != 0 {
		t.Error("a prediction stream was given a deadline")
	}
	if _, err := featurestore.NewClient("127.0.0.1:1", featurestore.WithDefaultTimeout(-time.Second)); err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Errorf("a negative default timeout: %v", err)
	}
}

// The deadline of the default timeout passes: the call fails with ErrDeadlineExceeded.
func TestDefaultTimeoutEndsACall(t *testing.T) {
	client := serveWith(t, []grpc.DialOption{featurestore.WithDefaultTimeout(200 * time.Millisecond)}, &slowServer{})
	started := time.Now()
	_, err := client.Predict(context.Background(), "m", featurestore.ModelSelector{}, symbols)
	if !errors.Is(err, featurestore.ErrDeadlineExceeded) || time.Since(started) > 3*time.Second {
		t.Fatalf("after %s: %v; want ErrDeadlineExceeded after 200 ms", time.Since(started), err)
	}
}

type slowServer struct {
	featurestorev1.UnimplementedPredictionServiceServer
}

func (slowServer) Predict(ctx context.Context, _ *featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Inline features reach the server as doubles (nil unset, NaN as NaN), as the Python SDK sends them.
func TestPredictSendsInlineFeatures(t *testing.T) {
	var got atomic.Pointer[featurestorev1.PredictRequest]
	client := serve(t, &predictionServer{predict: func(r *featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
		got.Store(r)
		return &featurestorev1.PredictResponse{ModelName: "m"}, nil
	}})
	inline := featurestore.WithInlineFeatures(map[string][]any{"bars_1m:close": {1.5, 2, nil, float32(0.25), math.NaN(), int64(-3), uint8(7)}})
	if _, err := client.Predict(timeout(t, 5*time.Second), "m", featurestore.ModelSelector{}, symbols, inline); err != nil {
		t.Fatal(err)
	}
	values := got.Load().GetInlineFeatures()["bars_1m:close"].GetValues()
	want := []float64{1.5, 2, 0, 0.25, math.NaN(), -3, 7}
	if len(values) != len(want) {
		t.Fatalf("%d values sent; want %d", len(values), len(want))
	}
	for i, v := range values {
		_, isDouble := v.GetKind().(*featurestorev1.Value_DoubleValue)
		switch {
		case i == 2 && v.GetKind() != nil:
			t.Errorf("nil sent as %v; want an unset Value", v)
		case i != 2 && !isDouble:
			t.Errorf("value %d sent as %v; want a double", i, v)
		case i == 4 && !math.IsNaN(v.GetDoubleValue()):
			t.Errorf("NaN sent as %v", v)
		case i != 2 && i != 4 && v.GetDoubleValue() != want[i]:
			t.Errorf("value %d sent as %v; want %v", i, v.GetDoubleValue(), want[i])
		}
	}
}

// A value that is not a number is refused before the call, naming it (the Python SDK refuses
// it before the call too).
func TestPredictRefusesAnInlineValueThatIsNotANumber(t *testing.T) {
	var calls atomic.Int32
	client := serve(t, &predictionServer{predict: func(*featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
		calls.Add(1)
		return &featurestorev1.PredictResponse{}, nil
	}})
	for _, bad := range []any{"1.5", true, []float64{1}} {
		inline := featurestore.WithInlineFeatures(map[string][]any{"bars_1m:close": {1.0, bad}})
		_, err := client.Predict(timeout(t, 5*time.Second), "m", featurestore.ModelSelector{}, symbols, inline)
		if err == nil || !strings.Contains(err.Error(), `inline_features["bars_1m:close"][1]`) || !strings.Contains(err.Error(), "not a number") {
			t.Errorf("%#v: %v; want an error naming inline_features[\"bars_1m:close\"][1]", bad, err)
		}
	}
	if calls.Load() != 0 {
		t.Errorf("%d calls reached the server", calls.Load())
	}
}

func logged(id string, answered *timestamppb.Timestamp, token string) *featurestorev1.StreamPredictionsResponse {
	return &featurestorev1.StreamPredictionsResponse{ResumeToken: token, Prediction: &featurestorev1.LoggedPrediction{
		PredictionId: id, ModelName: "m", ModelVersion: "3", Entity: map[string]string{"symbol": "IBM"},
		Score: 0.75, Features: map[string]float64{"bars_1m:close": 1.5}, ResponseTime: answered,
	}}
}

// The stream sends the model, the entities and the start; after a disconnect it resumes with the
// latest token (a checkpoint's included) and keeps FromTime's filter on the response time.
func TestPredictionStreamResumesAndKeepsTheStartTimeFilter(t *testing.T) {
	since := time.Date(2024, 5, 1, 14, 30, 0, 0, time.UTC)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(since.Add(d)) }
	var starts []string
	client := serve(t, &predictionServer{stream: func(r *featurestorev1.StreamPredictionsRequest, s grpc.ServerStreamingServer[featurestorev1.StreamPredictionsResponse]) error {
		if r.GetModelName() != "m" || r.GetEntities()["symbol"].GetValues()[0].GetStringValue() != "IBM" {
			return status.Error(codes.InvalidArgument, "model or entities not sent")
		}
		if r.GetStartTime() != nil {
			starts = append(starts, "time")
			s.Send(logged("p1", at(time.Second), "t1"))                          //nolint:errcheck
			s.Send(&featurestorev1.StreamPredictionsResponse{ResumeToken: "t2"}) //nolint:errcheck // a checkpoint
			return status.Error(codes.Unavailable, "connection reset")
		}
		starts = append(starts, "token:"+r.GetResumeToken())
		s.Send(logged("late", at(-time.Microsecond), "t3")) //nolint:errcheck
		return s.Send(logged("p2", at(0), "t4"))
	}})
	stream, err := client.StreamPredictions(timeout(t, 10*time.Second), "m", map[string][]any{"symbol": {"IBM"}}, featurestore.FromTime(since))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	first, err := stream.Next()
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != "p1" || first.ModelVersion != "3" || first.Entity["symbol"] != "IBM" || first.Score != 0.75 ||
		first.Features["bars_1m:close"] != 1.5 || !first.ResponseTime.Equal(since.Add(time.Second)) ||
		first.FeatureTime != nil || first.ResumeToken != "t1" {
		t.Fatalf("first prediction %+v", first)
	}
	second, err := stream.Next()
	if err != nil || second.ID != "p2" {
		t.Fatalf("after the reconnect: %v %v; want p2 (late dropped)", second, err)
	}
	if len(starts) != 2 || starts[1] != "token:t2" || stream.ResumeToken() != "t4" || stream.Reconnects != 1 {
		t.Fatalf("starts %v, token %q, reconnects %d", starts, stream.ResumeToken(), stream.Reconnects)
	}
}

// OUT_OF_RANGE (a token whose position is gone) is not retried: the same token fails again.
func TestPredictionStreamOutOfRangeIsReturned(t *testing.T) {
	var calls atomic.Int32
	client := serve(t, &predictionServer{stream: func(*featurestorev1.StreamPredictionsRequest, grpc.ServerStreamingServer[featurestorev1.StreamPredictionsResponse]) error {
		calls.Add(1)
		return status.Error(codes.OutOfRange, "resume_token: its position is gone")
	}})
	stream, err := client.StreamPredictions(timeout(t, 5*time.Second), "m", nil, featurestore.FromToken("old"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if _, err := stream.Next(); !errors.Is(err, featurestore.ErrOutOfRange) || calls.Load() != 1 {
		t.Fatalf("%v after %d calls; want ErrOutOfRange after one", err, calls.Load())
	}
}

// An entity value the wire cannot carry is refused before the call.
func TestPredictionStreamRefusesAnEntityTheWireCannotCarry(t *testing.T) {
	client := serve(t, &predictionServer{})
	if _, err := client.StreamPredictions(context.Background(), "m", map[string][]any{"symbol": {struct{}{}}}, featurestore.FromNow()); err == nil {
		t.Fatal("an entity value of type struct{} was accepted")
	}
}
