package featurestore_test

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	featurestore "github.com/featurestore/featurestore/clients/go"
	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// keyedPredictions answers UNAVAILABLE to the first `failures` attempts of each call (as a server
// whose answer was lost on the way) and records the idempotency key of every attempt.
type keyedPredictions struct {
	featurestorev1.UnimplementedPredictionServiceServer
	failures int
	mu       sync.Mutex
	keys     [][]string
}

func (s *keyedPredictions) Predict(ctx context.Context, _ *featurestorev1.PredictRequest) (*featurestorev1.PredictResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, md.Get(featurestore.IdempotencyKeyHeader))
	if len(s.keys)%(s.failures+1) != 0 {
		return nil, status.Error(codes.Unavailable, "connection lost after the answer")
	}
	return &featurestorev1.PredictResponse{ModelName: "m", ModelVersion: "1"}, nil
}

// A Predict that grpc-go retries sends the same key on every attempt; the next call a new one.
func TestPredictSendsOneIdempotencyKeyOnEveryRetry(t *testing.T) {
	server := &keyedPredictions{failures: 2}
	client := serve(t, server)
	for range 2 {
		if _, err := client.Predict(timeout(t, 5*time.Second), "m", featurestore.ModelSelector{}, symbols); err != nil {
			t.Fatal(err)
		}
	}
	if len(server.keys) != 6 {
		t.Fatalf("%d attempts, want 3 per call: %v", len(server.keys), server.keys)
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for i, keys := range server.keys {
		if len(keys) != 1 || !hex32.MatchString(keys[0]) {
			t.Fatalf("attempt %d sent idempotency keys %q, want one of 32 hex digits", i, keys)
		}
		if keys[0] != server.keys[i/3*3][0] {
			t.Fatalf("attempt %d of a call sent key %s, its first %s", i%3+1, keys[0], server.keys[i/3*3][0])
		}
	}
	if server.keys[0][0] == server.keys[3][0] {
		t.Fatalf("two calls sent the same key %s", server.keys[0][0])
	}
}
