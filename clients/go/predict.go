package featurestore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/grpc/metadata"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// Prediction is the score of one entity row and the features the model saw.
type Prediction struct {
	RequestID   string                  // id of the PredictionLog event the server wrote
	Score       float64                 // the model's output
	Names       []string                // the feature references, in the model's order
	Features    map[string]FeatureValue // only PRESENT values reached the model; others as NaN
	FeatureTime *time.Time              // event time of the newest feature row used
}

// Predictions is the answer of Predict: one prediction per entity row, in request order.
type Predictions struct {
	ModelName    string
	ModelVersion string // the registry version that scored (the alias's at the time of the call)
	Predictions  []Prediction
}

// Scores are the scores in row order.
func (p *Predictions) Scores() []float64 {
	scores := make([]float64, len(p.Predictions))
	for i, prediction := range p.Predictions {
		scores[i] = prediction.Score
	}
	return scores
}

// ModelSelector picks the model version: an Alias, a Version, or (both empty) "champion".
type ModelSelector struct {
	Alias   string
	Version string
}

// Predict scores the entities with a registered model, its features read online except those
// given by [WithInlineFeatures].
func (c *Client) Predict(ctx context.Context, model string, which ModelSelector, entities map[string][]any, opts ...PredictOption) (*Predictions, error) {
	columns, err := valueLists(entities)
	if err != nil {
		return nil, err
	}
	req := &featurestorev1.PredictRequest{ModelName: model, Entities: columns}
	switch {
	case which.Version != "":
		req.ModelSelector = &featurestorev1.PredictRequest_Version{Version: which.Version}
	case which.Alias != "":
		req.ModelSelector = &featurestorev1.PredictRequest_Alias{Alias: which.Alias}
	}
	if err := applyPredictOptions(req, opts); err != nil {
		return nil, err
	}
	resp, err := c.Predictions.Predict(withIdempotencyKey(ctx), req)
	if err != nil {
		return nil, fromRPC(err)
	}
	result := &Predictions{ModelName: resp.GetModelName(), ModelVersion: resp.GetModelVersion()}
	for _, p := range resp.GetPredictions() {
		prediction := Prediction{
			RequestID: p.GetRequestId(),
			Score:     p.GetScore(),
			Names:     p.GetFeatureNames(),
			Features:  make(map[string]FeatureValue, len(p.GetFeatureNames())),
		}
		names, values, statuses := p.GetFeatureNames(), p.GetFeatureValues(), p.GetFeatureStatuses()
		if len(values) != len(names) || len(statuses) != len(names) {
			return nil, fmt.Errorf("featurestore: prediction %s has %d feature names, %d values and %d statuses",
				p.GetRequestId(), len(names), len(values), len(statuses))
		}
		for i, name := range names {
			prediction.Features[name] = FeatureValue{Value: Scalar(values[i]), Status: StatusFromProto(statuses[i])}
		}
		prediction.FeatureTime = optionalTime(p.GetFeatureTime())
		result.Predictions = append(result.Predictions, prediction)
	}
	return result, nil
}

// IdempotencyKeyHeader is the metadata key of a Predict call's idempotency key: the server derives
// the prediction ids from it, so a call repeated with the same key logs the same ids again.
const IdempotencyKeyHeader = "idempotency-key"

// withIdempotencyKey adds a new key (128 random bits in hex, as a uuid4) to the call's metadata.
// One key per Predict call: grpc-go sends the context's metadata again on each retry attempt
// (retryConfig), so a call retried after its answer was lost logs its predictions only once.
func withIdempotencyKey(ctx context.Context) context.Context {
	var key [16]byte
	rand.Read(key[:]) //nolint:errcheck // crypto/rand.Read never returns an error (Go 1.24+)
	return metadata.AppendToOutgoingContext(ctx, IdempotencyKeyHeader, hex.EncodeToString(key[:]))
}
