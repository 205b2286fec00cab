package featurestore

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// setStart fills the start oneof of both stream requests by its field names: a name the proto
// changed fails here, not at a user's first stream. Each start replaces the one set before, as a
// reconnect's token replaces the start time.
func TestSetStartFillsBothStreamRequests(t *testing.T) {
	at := time.Date(2024, 5, 1, 14, 30, 0, 0, time.UTC)
	type streamRequest interface {
		proto.Message
		GetLatest() *emptypb.Empty
		GetStartTime() *timestamppb.Timestamp
		GetResumeToken() string
	}
	for _, req := range []streamRequest{&featurestorev1.StreamAnomaliesRequest{}, &featurestorev1.StreamPredictionsRequest{}} {
		name := req.ProtoReflect().Descriptor().Name()
		setStart(req, FromNow())
		if req.GetLatest() == nil {
			t.Errorf("%s from now: %v", name, req)
		}
		setStart(req, FromTime(at))
		if !req.GetStartTime().AsTime().Equal(at) || req.GetLatest() != nil {
			t.Errorf("%s from a time: %v", name, req)
		}
		setStart(req, FromToken("t1"))
		if req.GetResumeToken() != "t1" || req.GetStartTime() != nil {
			t.Errorf("%s from a token: %v", name, req)
		}
	}
}
