package featurestore

import (
	"context"
	"time"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// LoggedPrediction is a prediction as the prediction log holds it (made by Predict or by the
// prediction feed), with the token that resumes just after it.
type LoggedPrediction struct {
	ID           string // Predict's request id, or the feed's deterministic id
	ModelName    string
	ModelVersion string
	Entity       map[string]string  // join key to value, for example {"symbol": "IBM"}
	Score        float64            // the model's output
	Features     map[string]float64 // the values the model saw by "view:feature"; a missing one is absent
	FeatureTime  *time.Time         // event time of the newest feature row used; nil when none had one
	RequestTime  *time.Time         // when the request arrived (the feed: when the row was read)
	ResponseTime *time.Time         // when the prediction was returned
	ResumeToken  ResumeToken
}

// PredictionStream yields a model's predictions as they are logged ([PredictionStream.Next]);
// after a disconnect it reconnects with the latest token it holds, as [AnomalyStream] does, so
// nothing is repeated or skipped. Close it (or cancel its context) to end it. It has
// AnomalyStream's fields MaxAttempts, ReconnectWindow and Reconnects.
type PredictionStream struct {
	resumable[*featurestorev1.StreamPredictionsResponse]
}

// StreamPredictions opens a stream of the predictions of every version of model, from start;
// only those of entities (join key to values, as in Predict) when entities is not empty.
// [FromTime] keeps the predictions answered at or after the time (their ResponseTime), after a
// reconnect too. The error is a value of entities the wire cannot carry; the server's errors
// (ErrNotFound for an unknown model, ErrOutOfRange for a token whose position is gone) come from
// Next.
func (c *Client) StreamPredictions(ctx context.Context, model string, entities map[string][]any, start Start) (*PredictionStream, error) {
	columns, err := valueLists(entities)
	if err != nil {
		return nil, err
	}
	req := &featurestorev1.StreamPredictionsRequest{ModelName: model, Entities: columns}
	return &PredictionStream{newResumable[*featurestorev1.StreamPredictionsResponse](ctx, req, start, c.Predictions.StreamPredictions)}, nil
}

// Next blocks until the next prediction. It returns io.EOF when the server ends the stream, and an
// *Error once MaxAttempts connections in a row failed over more than ReconnectWindow, or the
// status is not worth a retry. When the context's deadline passes, the error matches
// [ErrDeadlineExceeded].
func (s *PredictionStream) Next() (*LoggedPrediction, error) {
	// The filter is on the response time, as the server's is.
	return nextItem(&s.resumable, (*featurestorev1.StreamPredictionsResponse).GetPrediction, (*featurestorev1.LoggedPrediction).GetResponseTime, loggedPrediction)
}

func loggedPrediction(p *featurestorev1.LoggedPrediction, token ResumeToken) *LoggedPrediction {
	return &LoggedPrediction{
		ID:           p.GetPredictionId(),
		ModelName:    p.GetModelName(),
		ModelVersion: p.GetModelVersion(),
		Entity:       p.GetEntity(),
		Score:        p.GetScore(),
		Features:     p.GetFeatures(),
		FeatureTime:  optionalTime(p.GetFeatureTime()),
		RequestTime:  optionalTime(p.GetRequestTime()),
		ResponseTime: optionalTime(p.GetResponseTime()),
		ResumeToken:  token,
	}
}
