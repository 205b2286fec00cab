// The README's example: online features with their statuses, a prediction, a training set
// export and live anomalies resumed by token, against a running server.
//
//	go run ./examples/quickstart -target 127.0.0.1:50151 -symbols QNHI,BA -token "$FEATURESTORE_TOKEN"
//
// Each step prints one JSON line. Flags name the model, the feature service, the export window
// and where the anomaly stream starts (-anomaly-start or -resume-token), so the same program runs
// against `make run` and against the integration tests' data.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	featurestore "github.com/featurestore/featurestore/clients/go"
)

func main() {
	target := flag.String("target", "127.0.0.1:50151", "server host:port")
	symbols := flag.String("symbols", "QNHI,BA", "comma-separated entities (symbol join key; default: the most traded of make run's synthetic market)")
	features := flag.String("features", "bars_1m:close,rolling_1m:vwap_5m", "online features to read")
	model := flag.String("model", "featurestore-direction", "registered model to predict with (alias champion)")
	service := flag.String("feature-service", "market_features_v1", "feature service to export")
	end := time.Now().UTC().Truncate(time.Minute)
	exportStart := flag.String("export-start", end.Add(-time.Hour).Format(time.RFC3339), "export window start (RFC 3339)")
	exportEnd := flag.String("export-end", end.Format(time.RFC3339), "export window end, exclusive")
	step := flag.Duration("step", time.Minute, "export grid step")
	horizon := flag.Duration("label-horizon", 5*time.Minute, "label horizon (0: no labels)")
	exportOut := flag.String("export-out", "", "write the export's Arrow IPC stream to this file")
	anomalyStart := flag.String("anomaly-start", "", "stream anomalies from this event time (RFC 3339); from now when empty")
	resumeToken := flag.String("resume-token", "", "continue the anomaly stream just after this token")
	minScore := flag.Float64("min-score", 0, "only anomalies scoring at least this")
	maxAnomalies := flag.Int("max-anomalies", 5, "stop after this many anomalies")
	watch := flag.Duration("watch", 10*time.Second, "stop watching anomalies after this long")
	token := flag.String("token", os.Getenv("FEATURESTORE_TOKEN"), "bearer token (default: $FEATURESTORE_TOKEN); none: send none")
	flag.Parse()

	var options []grpc.DialOption
	if *token != "" {
		options = append(options, featurestore.WithBearerToken(*token))
	}
	client, err := featurestore.NewClient(*target, options...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	names := strings.Split(*symbols, ",")
	entities := map[string][]any{"symbol": anySlice(names)}
	ctx := context.Background()

	// 1. Online features: a value, a status and an event time per feature and entity.
	call, cancel := context.WithTimeout(ctx, 10*time.Second)
	online, err := client.GetOnlineFeatures(call, featurestore.FeatureSelector{Refs: strings.Split(*features, ",")}, entities)
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	rows := make([]map[string]any, online.Len())
	for i := range rows {
		rows[i] = map[string]any{"symbol": names[i]}
		for _, name := range online.Names {
			v := online.Get(name, i)
			rows[i][name] = map[string]any{"value": v.Value, "status": v.Status, "event_time": v.EventTime}
		}
	}
	emit(map[string]any{"step": "online", "names": online.Names, "rows": rows})

	// 2. A prediction with the model's "champion" version; features are read online.
	call, cancel = context.WithTimeout(ctx, 30*time.Second)
	scored, err := client.Predict(call, *model, featurestore.ModelSelector{}, entities)
	cancel()
	switch {
	case errors.Is(err, featurestore.ErrNotFound):
		emit(map[string]any{"step": "predict", "error": "not_found", "details": err.Error()})
	case err != nil:
		log.Fatal(err)
	default:
		statuses := make([]map[string]featurestore.FeatureStatus, len(scored.Predictions))
		for i, p := range scored.Predictions {
			statuses[i] = map[string]featurestore.FeatureStatus{}
			for name, v := range p.Features {
				statuses[i][name] = v.Status
			}
		}
		emit(map[string]any{"step": "predict", "model_version": scored.ModelVersion, "scores": scored.Scores(), "statuses": statuses})
	}

	// 3. A point-in-time training set as an Arrow IPC stream.
	start, err1 := time.Parse(time.RFC3339, *exportStart)
	stop, err2 := time.Parse(time.RFC3339, *exportEnd)
	if err := errors.Join(err1, err2); err != nil {
		log.Fatal(err)
	}
	var sink io.Writer = io.Discard
	if *exportOut != "" {
		file, err := os.Create(*exportOut)
		if err != nil {
			log.Fatal(err)
		}
		defer file.Close()
		sink = file
	}
	call, cancel = context.WithTimeout(ctx, 60*time.Second)
	count, err := client.ExportTrainingDataset(call, featurestore.ExportRequest{
		Features: featurestore.FeatureSelector{Service: *service},
		Symbols:  names, Start: start, End: stop, Step: *step, LabelHorizon: *horizon,
	}, sink)
	cancel()
	if err != nil {
		emit(map[string]any{"step": "export", "error": err.Error()})
	} else {
		emit(map[string]any{"step": "export", "rows": count, "file": *exportOut})
	}

	// 4. Live anomalies. The stream reconnects by itself with its latest token; keep
	//    stream.ResumeToken() to continue later exactly where this left off (-resume-token).
	from := featurestore.FromNow()
	switch {
	case *resumeToken != "":
		from = featurestore.FromToken(featurestore.ResumeToken(*resumeToken))
	case *anomalyStart != "":
		t, err := time.Parse(time.RFC3339, *anomalyStart)
		if err != nil {
			log.Fatal(err)
		}
		from = featurestore.FromTime(t)
	}
	watching, cancel := context.WithTimeout(ctx, *watch)
	defer cancel()
	stream := client.StreamAnomalies(watching, featurestore.AnomalyFilter{Symbols: names, MinScore: minScore}, from)
	defer stream.Close()
	received := 0
	for received < *maxAnomalies {
		a, err := stream.Next()
		if err != nil {
			// -watch ran out (Next's error matches ErrDeadlineExceeded) or the server ended it.
			if !errors.Is(err, featurestore.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
				log.Fatal(err)
			}
			break
		}
		received++
		emit(map[string]any{"step": "anomaly", "id": a.ID, "symbol": a.Symbol, "score": a.Score, "token": a.ResumeToken})
	}
	emit(map[string]any{"step": "anomalies", "count": received, "resume_token": stream.ResumeToken()})
}

func emit(line map[string]any) {
	if err := json.NewEncoder(os.Stdout).Encode(line); err != nil {
		log.Fatal(err)
	}
}

func anySlice(values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}
