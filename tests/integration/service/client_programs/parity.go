// The live parity check of the Go client (built by test_generated_clients_parity.py in a module
// of its own that replaces the client with clients/go): inline features, StreamPredictions, errors.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	featurestore "github.com/featurestore/featurestore/clients/go"
)

func emit(v map[string]any) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func kind(err error) string {
	for name, sentinel := range map[string]error{
		"OutOfRange": featurestore.ErrOutOfRange, "NotFound": featurestore.ErrNotFound,
		"InvalidArgument": featurestore.ErrInvalidArgument, "Unimplemented": featurestore.ErrUnimplemented,
		"FailedPrecondition": featurestore.ErrFailedPrecondition, "ResourceExhausted": featurestore.ErrResourceExhausted,
		"Internal": featurestore.ErrInternal, "DeadlineExceeded": featurestore.ErrDeadlineExceeded,
	} {
		if errors.Is(err, sentinel) {
			return name
		}
	}
	return "other"
}

func main() {
	target := flag.String("target", "", "")
	token := flag.String("token", "", "")
	model := flag.String("model", "", "")
	symbols := flag.String("symbols", "", "")
	since := flag.String("since", "", "")
	count := flag.Int("count", 0, "")
	expired := flag.String("expired-token", "", "")
	flag.Parse()
	client, err := featurestore.NewClient(*target, featurestore.WithBearerToken(*token))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ctx := context.Background() // the client's default timeout bounds the unary calls
	var entities []any
	for _, s := range strings.Split(*symbols, ",") {
		entities = append(entities, s)
	}
	rows := map[string][]any{"symbol": entities}
	inline := map[string][]any{"bars_1m:close": make([]any, len(entities))}
	inline["bars_1m:close"][0] = 150.0
	scored, err := client.Predict(ctx, *model, featurestore.ModelSelector{}, rows, featurestore.WithInlineFeatures(inline))
	if err != nil {
		panic(err)
	}
	ids := []string{}
	for _, p := range scored.Predictions {
		ids = append(ids, p.RequestID)
	}
	emit(map[string]any{"step": "predict", "scores": scored.Scores(), "ids": ids, "version": scored.ModelVersion})
	_, err = client.Predict(ctx, *model, featurestore.ModelSelector{}, rows,
		featurestore.WithInlineFeatures(map[string][]any{"bars_1m:close": {"abc", 1.0}}))
	emit(map[string]any{"step": "bad_inline", "error": fmt.Sprint(err)})
	_, err = client.Predict(ctx, "no-such-model-x", featurestore.ModelSelector{}, rows)
	emit(map[string]any{"step": "unknown_model", "kind": kind(err), "error": fmt.Sprint(err)})

	start, err := time.Parse(time.RFC3339Nano, *since)
	if err != nil {
		panic(err)
	}
	watch, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stream, err := client.StreamPredictions(watch, *model, rows, featurestore.FromTime(start))
	if err != nil {
		panic(err)
	}
	got := []map[string]any{}
	for len(got) < *count {
		p, err := stream.Next()
		if err != nil {
			emit(map[string]any{"step": "stream_error", "kind": kind(err), "error": err.Error()})
			os.Exit(1)
		}
		got = append(got, map[string]any{"id": p.ID, "entity": p.Entity, "score": p.Score, "features": p.Features,
			"response_time": p.ResponseTime.Format(time.RFC3339Nano), "version": p.ModelVersion})
	}
	stream.Close()
	emit(map[string]any{"step": "stream", "predictions": got, "token": string(stream.ResumeToken())})
	gone, err := client.StreamPredictions(watch, *model, nil, featurestore.FromToken(featurestore.ResumeToken(*expired)))
	if err != nil {
		panic(err)
	}
	_, err = gone.Next()
	emit(map[string]any{"step": "expired_token", "kind": kind(err), "error": fmt.Sprint(err)})
}
