package featurestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	featurestorev1 "github.com/featurestore/featurestore/clients/go/gen/featurestore/v1"
)

// ExportRequest asks for a point-in-time training set: the selected features for every symbol
// at every Step in [Start, End), with labels LabelHorizon ahead when it is not zero.
type ExportRequest struct {
	Features         FeatureSelector
	Symbols          []string
	Start, End       time.Time
	Step             time.Duration
	LabelHorizon     time.Duration
	FullFeatureNames bool // "view__feature" column names
}

// ExportTrainingDataset streams the training set into w as one Arrow IPC stream (read it with
// any Arrow library: github.com/apache/arrow-go's ipc.NewReader, pyarrow.ipc.open_stream) and
// returns the number of rows. A failure before the first piece (UNAVAILABLE) is retried, as
// the Python SDK does; once w has a piece, an error ends the export (w holds a partial stream).
// Every return cancels the call, so the server stops streaming when w fails.
func (c *Client) ExportTrainingDataset(ctx context.Context, r ExportRequest, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &featurestorev1.ExportTrainingDatasetRequest{
		EntityRows: &featurestorev1.ExportTrainingDatasetRequest_TimeGrid{TimeGrid: &featurestorev1.EntityTimeGrid{
			Symbols:   r.Symbols,
			StartTime: timestamppb.New(r.Start),
			EndTime:   timestamppb.New(r.End),
			Step:      durationpb.New(r.Step),
		}},
		FullFeatureNames: r.FullFeatureNames,
	}
	if r.Features.Service != "" {
		req.FeatureSelector = &featurestorev1.ExportTrainingDatasetRequest_FeatureService{FeatureService: r.Features.Service}
	} else {
		req.FeatureSelector = &featurestorev1.ExportTrainingDatasetRequest_Features{
			Features: &featurestorev1.FeatureList{Features: r.Features.Refs},
		}
	}
	if r.LabelHorizon != 0 {
		req.LabelHorizon = durationpb.New(r.LabelHorizon)
	}
	stream, err := c.Datasets.ExportTrainingDataset(ctx, req)
	if err != nil {
		return 0, fromRPC(err)
	}
	var rows int64
	for {
		piece, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, fromRPC(err)
		}
		if _, err := w.Write(piece.GetArrowIpc()); err != nil {
			return rows, fmt.Errorf("featurestore: writing the export: %w", err)
		}
		rows += piece.GetRowCount()
	}
}
