package featurestore_test

import (
	"bytes"
	"context"
	"errors"
	"net"
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

// The tests drive the client against a grpc-go server in this process whose handlers each test
// scripts: it stands in for the featurestore server only to produce the statuses, answers and
// failures the client must handle.

type featureServer struct {
	featurestorev1.UnimplementedFeatureServiceServer
	get func(*featurestorev1.GetOnlineFeaturesRequest) (*featurestorev1.GetOnlineFeaturesResponse, error)
}

func (s *featureServer) GetOnlineFeatures(_ context.Context, r *featurestorev1.GetOnlineFeaturesRequest) (*featurestorev1.GetOnlineFeaturesResponse, error) {
	return s.get(r)
}

type predictionServer struct {
	featurestorev1.UnimplementedPredictionServiceServer
	predict func(*featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error)
	stream  func(*featurestorev1.StreamPredictionsRequest, grpc.ServerStreamingServer[featurestorev1.StreamPredictionsResponse]) error
}

func (s *predictionServer) Predict(_ context.Context, r *featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
	return s.predict(r)
}

func (s *predictionServer) StreamPredictions(r *featurestorev1.StreamPredictionsRequest, stream grpc.ServerStreamingServer[featurestorev1.StreamPredictionsResponse]) error {
	return s.stream(r, stream)
}

type datasetServer struct {
	featurestorev1.UnimplementedDatasetServiceServer
	export func(*featurestorev1.ExportTrainingDatasetRequest, grpc.ServerStreamingServer[featurestorev1.ExportTrainingDatasetResponse]) error
}

func (s *datasetServer) ExportTrainingDataset(r *featurestorev1.ExportTrainingDatasetRequest, stream grpc.ServerStreamingServer[featurestorev1.ExportTrainingDatasetResponse]) error {
	return s.export(r, stream)
}

type anomalyServer struct {
	featurestorev1.UnimplementedAnomalyServiceServer
	stream func(*featurestorev1.StreamAnomaliesRequest, grpc.ServerStreamingServer[featurestorev1.StreamAnomaliesResponse]) error
}

func (s *anomalyServer) StreamAnomalies(r *featurestorev1.StreamAnomaliesRequest, stream grpc.ServerStreamingServer[featurestorev1.StreamAnomaliesResponse]) error {
	return s.stream(r, stream)
}

// serve starts a server on 127.0.0.1:0 with the given services and returns a client of it.
func serve(t *testing.T, services ...any) *featurestore.Client {
	t.Helper()
	return serveWith(t, nil, services...)
}

// serveWith is serve with the client's options.
func serveWith(t *testing.T, options []grpc.DialOption, services ...any) *featurestore.Client {
	t.Helper()
	server := grpc.NewServer()
	for _, service := range services {
		switch service := service.(type) {
		case *featureServer:
			featurestorev1.RegisterFeatureServiceServer(server, service)
		case featurestorev1.PredictionServiceServer:
			featurestorev1.RegisterPredictionServiceServer(server, service)
		case *datasetServer:
			featurestorev1.RegisterDatasetServiceServer(server, service)
		case *anomalyServer:
			featurestorev1.RegisterAnomalyServiceServer(server, service)
		default:
			t.Fatalf("no service %T", service)
		}
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go server.Serve(listener) //nolint:errcheck // Stop ends it
	t.Cleanup(server.Stop)
	client, err := featurestore.NewClient(listener.Addr().String(), options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var symbols = map[string][]any{"symbol": {"A", "B", "C"}}

func double(x float64) *featurestorev1.Value {
	return &featurestorev1.Value{Kind: &featurestorev1.Value_DoubleValue{DoubleValue: x}}
}

func TestUnknownStatusReadsNotFound(t *testing.T) {
	client := serve(t, &featureServer{get: func(*featurestorev1.GetOnlineFeaturesRequest) (*featurestorev1.GetOnlineFeaturesResponse, error) {
		return &featurestorev1.GetOnlineFeaturesResponse{
			FeatureNames: []string{"bars_1m:close"},
			Columns: []*featurestorev1.FeatureColumn{{
				Values: []*featurestorev1.Value{double(1.5), {}, {}},
				// 9 is a status a newer server might send; 0 is UNSPECIFIED.
				Statuses: []featurestorev1.FeatureStatus{featurestorev1.FeatureStatus_FEATURE_STATUS_PRESENT, 9, 0},
			}},
		}, nil
	}}, &predictionServer{predict: func(*featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
		return &featurestorev1.PredictResponse{Predictions: []*featurestorev1.Prediction{{
			FeatureNames:    []string{"a:x", "a:y"},
			FeatureValues:   []*featurestorev1.Value{double(1), {}},
			FeatureStatuses: []featurestorev1.FeatureStatus{featurestorev1.FeatureStatus_FEATURE_STATUS_PRESENT, 9},
		}}}, nil
	}})
	online, err := client.GetOnlineFeatures(timeout(t, 5*time.Second), featurestore.FeatureSelector{Refs: []string{"bars_1m:close"}}, symbols)
	if err != nil {
		t.Fatalf("one unknown status failed the whole call: %v", err)
	}
	want := []featurestore.FeatureStatus{featurestore.StatusPresent, featurestore.StatusNotFound, featurestore.StatusNotFound}
	for row, status := range want {
		if got := online.Get("bars_1m:close", row).Status; got != status {
			t.Errorf("row %d: status %q, want %q", row, got, status)
		}
	}
	scored, err := client.Predict(timeout(t, 5*time.Second), "m", featurestore.ModelSelector{}, symbols)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	if got := scored.Predictions[0].Features["a:y"].Status; got != featurestore.StatusNotFound {
		t.Errorf("Predict: status %q, want not_found", got)
	}
}

func TestPredictShortAnswerIsAnError(t *testing.T) {
	client := serve(t, &predictionServer{predict: func(*featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
		return &featurestorev1.PredictResponse{Predictions: []*featurestorev1.Prediction{{
			RequestId:       "r1",
			FeatureNames:    []string{"a:x", "a:y"},
			FeatureValues:   []*featurestorev1.Value{double(1)},
			FeatureStatuses: []featurestorev1.FeatureStatus{featurestorev1.FeatureStatus_FEATURE_STATUS_PRESENT},
		}}}, nil
	}})
	_, err := client.Predict(timeout(t, 5*time.Second), "m", featurestore.ModelSelector{}, symbols)
	if err == nil {
		t.Fatal("a prediction with fewer values than names was accepted")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func piece(rows int64) *featurestorev1.ExportTrainingDatasetResponse {
	return &featurestorev1.ExportTrainingDatasetResponse{ArrowIpc: []byte("ipc"), RowCount: rows}
}

func TestExportWriterErrorCancelsTheCall(t *testing.T) {
	ended := make(chan error, 1)
	client := serve(t, &datasetServer{export: func(_ *featurestorev1.ExportTrainingDatasetRequest, stream grpc.ServerStreamingServer[featurestorev1.ExportTrainingDatasetResponse]) error {
		if err := stream.Send(piece(1)); err != nil {
			return err
		}
		<-stream.Context().Done() // a long export: only the client's cancel ends it
		ended <- stream.Context().Err()
		return nil
	}})
	// No deadline: only the client's own cancel can end the call.
	_, err := client.ExportTrainingDataset(context.Background(), featurestore.ExportRequest{}, failingWriter{})
	if err == nil {
		t.Fatal("the writer's error was not returned")
	}
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Fatal("the server still streams 2 s after ExportTrainingDataset returned")
	}
}

func TestExportRetriedBeforeTheFirstPiece(t *testing.T) {
	var attempts atomic.Int32
	client := serve(t, &datasetServer{export: func(_ *featurestorev1.ExportTrainingDatasetRequest, stream grpc.ServerStreamingServer[featurestorev1.ExportTrainingDatasetResponse]) error {
		if attempts.Add(1) == 1 {
			return status.Error(codes.Unavailable, "offline store away")
		}
		return stream.Send(piece(3))
	}})
	var out bytes.Buffer
	rows, err := client.ExportTrainingDataset(timeout(t, 5*time.Second), featurestore.ExportRequest{}, &out)
	if err != nil || rows != 3 || out.String() != "ipc" {
		t.Fatalf("rows %d, %q, err %v after %d attempts; want the second attempt's", rows, out.String(), err, attempts.Load())
	}
}

func TestExportNotRetriedAfterAPiece(t *testing.T) {
	var attempts atomic.Int32
	client := serve(t, &datasetServer{export: func(_ *featurestorev1.ExportTrainingDatasetRequest, stream grpc.ServerStreamingServer[featurestorev1.ExportTrainingDatasetResponse]) error {
		attempts.Add(1)
		if err := stream.Send(piece(1)); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "offline store away")
	}})
	var out bytes.Buffer
	_, err := client.ExportTrainingDataset(timeout(t, 5*time.Second), featurestore.ExportRequest{}, &out)
	if !errors.Is(err, featurestore.ErrUnavailable) || attempts.Load() != 1 || out.String() != "ipc" {
		t.Fatalf("err %v, %d attempts, %q written; want UNAVAILABLE after one attempt", err, attempts.Load(), out.String())
	}
}

// The deadline passes while the stream reconnects (the server is away): the error matches
// ErrDeadlineExceeded, as a unary call's does, not only context.DeadlineExceeded.
func TestAnomalyStreamDeadlineIsErrDeadlineExceeded(t *testing.T) {
	var starts atomic.Int32
	client := serve(t, &anomalyServer{stream: func(_ *featurestorev1.StreamAnomaliesRequest, stream grpc.ServerStreamingServer[featurestorev1.StreamAnomaliesResponse]) error {
		if starts.Add(1) > 1 {
			return status.Error(codes.Unavailable, "restarting")
		}
		if err := stream.Send(&featurestorev1.StreamAnomaliesResponse{Anomaly: &featurestorev1.Anomaly{AnomalyId: "a1"}, ResumeToken: "t1"}); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "shutting down")
	}})
	stream := client.StreamAnomalies(timeout(t, 300*time.Millisecond), featurestore.AnomalyFilter{}, featurestore.FromNow())
	stream.MaxAttempts = 1 << 20 // reconnect until the deadline
	defer stream.Close()
	if a, err := stream.Next(); err != nil || a.ID != "a1" {
		t.Fatalf("first anomaly: %v %v", a, err)
	}
	_, err := stream.Next()
	if !errors.Is(err, featurestore.ErrDeadlineExceeded) {
		t.Fatalf("at the deadline Next returned %T %v; want one that matches ErrDeadlineExceeded", err, err)
	}
}

// A server restart (the process stops, the port is refused for a while, a new process takes it)
// is resumed with the latest token: the stream keeps reconnecting for ReconnectWindow, not only
// for the first few attempts, so nothing is lost or repeated.
func TestAnomalyStreamResumesAcrossAServerRestart(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	starts := make(chan string, 4)
	first := grpc.NewServer()
	featurestorev1.RegisterAnomalyServiceServer(first, &anomalyServer{stream: func(r *featurestorev1.StreamAnomaliesRequest, s grpc.ServerStreamingServer[featurestorev1.StreamAnomaliesResponse]) error {
		starts <- "latest"
		s.Send(&featurestorev1.StreamAnomaliesResponse{Anomaly: &featurestorev1.Anomaly{AnomalyId: "a1"}, ResumeToken: "t1"}) //nolint:errcheck
		<-s.Context().Done()
		return nil
	}})
	go first.Serve(listener) //nolint:errcheck // Stop ends it
	client, err := featurestore.NewClient(address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	stream := client.StreamAnomalies(timeout(t, 20*time.Second), featurestore.AnomalyFilter{}, featurestore.FromNow())
	defer stream.Close()
	if a, err := stream.Next(); err != nil || a.ID != "a1" {
		t.Fatalf("first anomaly: %v %v", a, err)
	}
	first.Stop() // the process died; its successor listens 2 s later
	restarted := make(chan *grpc.Server, 1)
	go func() {
		time.Sleep(2 * time.Second)
		second := grpc.NewServer()
		featurestorev1.RegisterAnomalyServiceServer(second, &anomalyServer{stream: func(r *featurestorev1.StreamAnomaliesRequest, s grpc.ServerStreamingServer[featurestorev1.StreamAnomaliesResponse]) error {
			starts <- "token:" + r.GetResumeToken()
			return s.Send(&featurestorev1.StreamAnomaliesResponse{Anomaly: &featurestorev1.Anomaly{AnomalyId: "a2"}, ResumeToken: "t2"})
		}})
		again, err := net.Listen("tcp", address)
		if err != nil {
			t.Error(err)
			restarted <- second
			return
		}
		go second.Serve(again) //nolint:errcheck // Stop ends it
		restarted <- second
	}()
	a, err := stream.Next()
	defer (<-restarted).Stop()
	if err != nil || a.ID != "a2" {
		t.Fatalf("after the restart: %v %v (reconnects %d)", a, err, stream.Reconnects)
	}
	if got := []string{<-starts, <-starts}; got[0] != "latest" || got[1] != "token:t1" {
		t.Fatalf("starts %v", got)
	}
	if stream.ResumeToken() != "t2" {
		t.Fatalf("token %q", stream.ResumeToken())
	}
}

// A reconnect sends the token instead of start_time (a oneof), so the server no longer drops
// anomalies timed before it: the stream drops them itself, as before the reconnect.
func TestAnomalyStreamKeepsTheStartTimeFilterAfterAReconnect(t *testing.T) {
	since := time.Date(2024, 5, 1, 14, 30, 0, 0, time.UTC)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(since.Add(d)) }
	var starts atomic.Int32
	client := serve(t, &anomalyServer{stream: func(r *featurestorev1.StreamAnomaliesRequest, s grpc.ServerStreamingServer[featurestorev1.StreamAnomaliesResponse]) error {
		if starts.Add(1) == 1 {
			s.Send(&featurestorev1.StreamAnomaliesResponse{Anomaly: &featurestorev1.Anomaly{AnomalyId: "a1", EventTime: at(time.Second)}, ResumeToken: "t1"}) //nolint:errcheck
			return status.Error(codes.Unavailable, "connection reset")
		}
		if r.GetResumeToken() != "t1" {
			return status.Error(codes.InvalidArgument, "no token")
		}
		s.Send(&featurestorev1.StreamAnomaliesResponse{Anomaly: &featurestorev1.Anomaly{AnomalyId: "late", EventTime: at(-time.Nanosecond)}, ResumeToken: "t2"}) //nolint:errcheck
		return s.Send(&featurestorev1.StreamAnomaliesResponse{Anomaly: &featurestorev1.Anomaly{AnomalyId: "a2", EventTime: at(0)}, ResumeToken: "t3"})
	}})
	stream := client.StreamAnomalies(timeout(t, 10*time.Second), featurestore.AnomalyFilter{}, featurestore.FromTime(since))
	defer stream.Close()
	var got []string
	for range 2 {
		a, err := stream.Next()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, a.ID)
	}
	if got[0] != "a1" || got[1] != "a2" || stream.ResumeToken() != "t3" {
		t.Fatalf("got %v, token %q; want [a1 a2] and t3", got, stream.ResumeToken())
	}
}

func TestAnEntityWithNoWireValueIsNamedBeforeAnyCall(t *testing.T) {
	calls := 0
	client := serve(t, &predictionServer{predict: func(*featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
		calls++
		return &featurestorev1.PredictResponse{}, nil
	}})
	entities := map[string][]any{"symbol": {"AAPL", struct{}{}}}
	_, err := client.Predict(timeout(t, 5*time.Second), "m", featurestore.ModelSelector{}, entities)
	want := `featurestore: entities["symbol"][1]: a struct {} has no wire Value (give a string, an integer, a float, a bool, []byte or a time.Time)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if calls != 0 {
		t.Fatalf("the server was called %d times", calls)
	}
}
