package featurestore

import (
	"context"
	"time"

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

// AnomalyStream yields anomalies ([AnomalyStream.Next]); after a disconnect it reconnects with
// the latest token it holds, so nothing is repeated or skipped. Checkpoints (a token without an
// anomaly) move the token without being returned. Close it (or cancel its context) to end it.
//
// Its fields, shared with [PredictionStream]: MaxAttempts, the connections in a row that must fail
// before Next returns the error (4); ReconnectWindow, how long it keeps reconnecting after its
// connection went (30 s), so that a server restart within it loses nothing; Reconnects, how many
// times it reconnected.
type AnomalyStream struct {
	resumable[*featurestorev1.StreamAnomaliesResponse]
}

// StreamAnomalies opens a stream of the anomalies that pass filter, from start.
func (c *Client) StreamAnomalies(ctx context.Context, filter AnomalyFilter, start Start) *AnomalyStream {
	req := &featurestorev1.StreamAnomaliesRequest{Symbols: filter.Symbols, MinScore: filter.MinScore}
	return &AnomalyStream{newResumable[*featurestorev1.StreamAnomaliesResponse](ctx, req, start, c.Anomalies.StreamAnomalies)}
}

// Next blocks until the next anomaly. It returns io.EOF when the server ends the stream, and an
// *Error once MaxAttempts connections in a row failed over more than ReconnectWindow, or the
// status is not worth a retry. When the context's deadline passes, the error matches
// [ErrDeadlineExceeded], as a unary call's does.
func (s *AnomalyStream) Next() (*Anomaly, error) {
	return nextItem(&s.resumable, (*featurestorev1.StreamAnomaliesResponse).GetAnomaly, (*featurestorev1.Anomaly).GetEventTime, anomaly)
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
