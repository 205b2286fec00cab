// Command loadgen drives one unary gRPC method with pre-serialized request bytes and reports
// latency percentiles and throughput as one JSON object on stdout.
//
// It is the benchmarks' load generator outside Python (issue 18): requests are sent as the bytes
// given (-request, a file), responses are received as bytes and never decoded, so the client's
// cost per call is gRPC's framing alone, not a message parser (ghz decodes every response with
// dynamic messages, which capped it at ~180 calls/s on 100 x 10 responses here).
//
// Load, in one of two shapes:
//   - closed loop (default): -concurrency workers, each calling again as soon as its call returns;
//   - open loop (-rate R): a call starts every 1/R s whether or not earlier ones returned (up to
//     -max-inflight at once; a call that cannot start on time counts as late), and each latency is
//     measured from the call's scheduled start, so a server that falls behind shows its queueing
//     delay (no coordinated omission).
//
// `loadgen -serve-echo` instead serves the same method shapes itself (any method, a reply of the
// size the x-response-size header asks for): driven against it, loadgen measures its own ceiling.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// rawCodec passes bytes through: requests are sent as given, replies kept undecoded. Its name is
// "proto" so that the content type is the one every gRPC server expects.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

// Result is what one run reports (JSON on stdout).
type Result struct {
	Mode          string  `json:"mode"`
	Concurrency   int     `json:"concurrency"`
	Rate          float64 `json:"rate"`
	Calls         int     `json:"calls"`
	Errors        int     `json:"errors"`
	Late          int     `json:"late"`
	Seconds       float64 `json:"seconds"`
	QPS           float64 `json:"qps"`
	P50Ms         float64 `json:"p50_ms"`
	P90Ms         float64 `json:"p90_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	ResponseBytes int     `json:"response_bytes"`
	CPUSeconds    float64 `json:"cpu_s"`
	FirstError    string  `json:"first_error,omitempty"`
}

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ",") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

type recorder struct {
	mu        sync.Mutex
	latencies []time.Duration
	errors    int
	late      int
	first     string
	size      int
}

func (r *recorder) add(d time.Duration, size int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errors++
		if r.first == "" {
			r.first = status.Convert(err).String()
		}
		return
	}
	r.latencies = append(r.latencies, d)
	r.size = size
}

func main() {
	target := flag.String("target", "", "host:port of the server")
	method := flag.String("method", "", "full method name, /package.Service/Method")
	requestFile := flag.String("request", "", "file holding the serialized request")
	concurrency := flag.Int("concurrency", 1, "closed loop: calls in flight")
	rate := flag.Float64("rate", 0, "open loop: calls started per second (0: closed loop)")
	maxInflight := flag.Int("max-inflight", 512, "open loop: most calls in flight at once")
	duration := flag.Duration("duration", 2*time.Second, "how long to measure")
	warmup := flag.Int("warmup", 20, "calls made (per connection) before measuring")
	connections := flag.Int("connections", 1, "HTTP/2 connections, calls spread over them")
	timeout := flag.Duration("timeout", 5*time.Second, "each call's deadline")
	serveEcho := flag.String("serve-echo", "", "serve an echo on this address instead (port 0: any)")
	var meta headers
	flag.Var(&meta, "metadata", "key=value sent with every call (repeatable)")
	flag.Parse()

	if *serveEcho != "" {
		if err := runEcho(*serveEcho); err != nil {
			fail(err)
		}
		return
	}
	if *target == "" || *method == "" || *requestFile == "" {
		fail(fmt.Errorf("give -target, -method and -request (or -serve-echo)"))
	}
	if *concurrency < 1 || *connections < 1 || *rate < 0 || *maxInflight < 1 {
		fail(fmt.Errorf("-concurrency, -connections and -max-inflight must be >= 1, -rate >= 0"))
	}
	request, err := os.ReadFile(*requestFile)
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	for _, kv := range meta {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fail(fmt.Errorf("-metadata %q: want key=value", kv))
		}
		ctx = metadata.AppendToOutgoingContext(ctx, k, v)
	}
	conns := make([]*grpc.ClientConn, *connections)
	for i := range conns {
		conn, err := grpc.NewClient(*target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		if err != nil {
			fail(err)
		}
		defer conn.Close()
		conns[i] = conn
	}
	call := func(conn *grpc.ClientConn, reply *[]byte) error {
		callCtx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		return conn.Invoke(callCtx, *method, &request, reply)
	}
	for _, conn := range conns {
		var reply []byte
		for i := 0; i < *warmup; i++ {
			if err := call(conn, &reply); err != nil {
				fail(fmt.Errorf("warm-up call: %s", status.Convert(err).String()))
			}
		}
	}

	rec := &recorder{}
	cpuBefore := cpuSeconds()
	started := time.Now()
	var result Result
	if *rate > 0 {
		openLoop(conns, call, rec, *rate, *maxInflight, *duration)
		result.Mode, result.Rate = "open", *rate
	} else {
		closedLoop(conns, call, rec, *concurrency, *duration)
		result.Mode, result.Concurrency = "closed", *concurrency
	}
	elapsed := time.Since(started).Seconds()
	result.CPUSeconds = cpuSeconds() - cpuBefore
	result.Seconds = elapsed
	result.Calls, result.Errors, result.Late = len(rec.latencies), rec.errors, rec.late
	result.QPS = float64(result.Calls) / elapsed
	result.ResponseBytes, result.FirstError = rec.size, rec.first
	sort.Slice(rec.latencies, func(i, j int) bool { return rec.latencies[i] < rec.latencies[j] })
	result.P50Ms = percentileMs(rec.latencies, 0.50)
	result.P90Ms = percentileMs(rec.latencies, 0.90)
	result.P99Ms = percentileMs(rec.latencies, 0.99)
	result.MaxMs = percentileMs(rec.latencies, 1.0)
	if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
		fail(err)
	}
}

type caller func(conn *grpc.ClientConn, reply *[]byte) error

func closedLoop(conns []*grpc.ClientConn, call caller, rec *recorder, workers int, d time.Duration) {
	stopAt := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(conn *grpc.ClientConn) {
			defer wg.Done()
			var reply []byte
			for {
				start := time.Now()
				if !start.Before(stopAt) {
					return
				}
				err := call(conn, &reply)
				rec.add(time.Since(start), len(reply), err)
			}
		}(conns[w%len(conns)])
	}
	wg.Wait()
}

// openLoop starts call i at start + i/rate, measuring each from that scheduled time.
func openLoop(conns []*grpc.ClientConn, call caller, rec *recorder, rate float64, maxInflight int,
	d time.Duration) {
	interval := time.Duration(float64(time.Second) / rate)
	total := int(math.Round(d.Seconds() * rate))
	slots := make(chan struct{}, maxInflight)
	var wg sync.WaitGroup
	var late atomic.Int64
	start := time.Now()
	for i := 0; i < total; i++ {
		scheduled := start.Add(time.Duration(i) * interval)
		if wait := time.Until(scheduled); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case slots <- struct{}{}:
		default: // every slot busy: the call waits for one, and counts as late
			late.Add(1)
			slots <- struct{}{}
		}
		wg.Add(1)
		go func(conn *grpc.ClientConn) {
			defer wg.Done()
			defer func() { <-slots }()
			var reply []byte
			err := call(conn, &reply)
			rec.add(time.Since(scheduled), len(reply), err)
		}(conns[i%len(conns)])
	}
	wg.Wait()
	rec.late = int(late.Load())
}

func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return float64(sorted[i].Microseconds()) / 1000
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return math.NaN()
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}

// runEcho serves every method with a reply of x-response-size bytes and prints its port.
func runEcho(address string) error {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	payloads := map[int][]byte{}
	handler := func(_ any, stream grpc.ServerStream) error {
		var request []byte
		if err := stream.RecvMsg(&request); err != nil {
			return err
		}
		size := 0
		if md, ok := metadata.FromIncomingContext(stream.Context()); ok {
			if v := md.Get("x-response-size"); len(v) > 0 {
				size, _ = strconv.Atoi(v[0])
			}
		}
		mu.Lock()
		payload, ok := payloads[size]
		if !ok {
			payload = make([]byte, size)
			for i := range payload {
				payload[i] = 1
			}
			payloads[size] = payload
		}
		mu.Unlock()
		return stream.SendMsg(&payload)
	}
	server := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.UnknownServiceHandler(handler))
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	return server.Serve(listener)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(2)
}
