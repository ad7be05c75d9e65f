// Command extproc-client routes OpenAI requests the way a gateway would, without one: it asks the endpoint
// picker over Envoy's ext_proc gRPC protocol where a request should go, applies the header and body mutations
// the picker returns, and sends the request to the picked endpoint. One JSON line per request on stdout.
//
// With -rate it is a bounded load generator: requests start at a steady rate for -duration (each in its own
// goroutine, every -stream'th one streaming), each line gains its start time, latency and the cause of a
// failure (connect refused, reset, 5xx, timeout, picker), and it exits 0 whatever failed: the caller counts.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

const destinationKey = "x-gateway-destination-endpoint"

type result struct {
	Start       int64             `json:"start_ms,omitempty"`   // load mode: when the request started, Unix ms
	LatencyMs   float64           `json:"latency_ms,omitempty"` // load mode: until the last byte
	Stream      bool              `json:"stream,omitempty"`
	Cause       string            `json:"cause,omitempty"` // load mode, on failure
	Destination string            `json:"destination,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"` // the x-* headers the picker set
	Immediate   int               `json:"immediate_status,omitempty"`
	Status      int               `json:"status,omitempty"`
	Body        string            `json:"body,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// pick runs one request through the picker: destination, headers to set, and the body to send.
func pick(ctx context.Context, client extprocv3.ExternalProcessorClient, path string, body []byte) (*result, map[string]string, []byte) {
	res := &result{Headers: map[string]string{}}
	stream, err := client.Process(ctx)
	if err != nil {
		res.Error = "ext_proc stream: " + err.Error()
		return res, nil, nil
	}
	headers := []*corev3.HeaderValue{
		{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte(path)},
		{Key: ":scheme", RawValue: []byte("http")}, {Key: ":authority", RawValue: []byte("llm-d.local")},
		{Key: "content-type", RawValue: []byte("application/json")},
		{Key: "content-length", RawValue: []byte(fmt.Sprint(len(body)))},
	}
	send := []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: headers}}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
			Body: body, EndOfStream: true}}},
	}
	for _, req := range send {
		if err := stream.Send(req); err != nil {
			res.Error = "ext_proc send: " + err.Error()
			return res, nil, nil
		}
	}
	set := map[string]string{}
	var mutated []byte
	bodyDone, headersDone := false, false
	for !(bodyDone && headersDone) {
		resp, err := stream.Recv()
		if err != nil {
			res.Error = "ext_proc receive: " + err.Error()
			return res, nil, nil
		}
		switch r := resp.Response.(type) {
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			res.Immediate = int(r.ImmediateResponse.GetStatus().GetCode())
			res.Body = string(r.ImmediateResponse.GetBody())
			return res, nil, nil
		case *extprocv3.ProcessingResponse_RequestHeaders:
			headersDone = true
			for _, h := range r.RequestHeaders.GetResponse().GetHeaderMutation().GetSetHeaders() {
				value := string(h.GetHeader().GetRawValue())
				if value == "" {
					value = h.GetHeader().GetValue()
				}
				set[strings.ToLower(h.GetHeader().GetKey())] = value
			}
			if md := resp.GetDynamicMetadata().GetFields()["envoy.lb"]; md != nil {
				res.Destination = md.GetStructValue().GetFields()[destinationKey].GetStringValue()
			}
		case *extprocv3.ProcessingResponse_RequestBody:
			mutation := r.RequestBody.GetResponse().GetBodyMutation()
			if streamed := mutation.GetStreamedResponse(); streamed != nil {
				mutated = append(mutated, streamed.GetBody()...)
				bodyDone = streamed.GetEndOfStream()
			} else {
				if mutation.GetBody() != nil {
					mutated = mutation.GetBody()
				}
				bodyDone = true
			}
		}
	}
	_ = stream.CloseSend()
	if res.Destination == "" {
		res.Destination = set[destinationKey]
	}
	for k, v := range set {
		if strings.HasPrefix(k, "x-") {
			res.Headers[k] = v
		}
	}
	if mutated == nil {
		mutated = body
	}
	return res, set, mutated
}

// send routes one request and sends it where the picker said; with stream, reads the event stream to its end.
func send(client extprocv3.ExternalProcessorClient, httpClient *http.Client, path string, body []byte,
	timeout time.Duration, stream bool) *result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	res, set, payload := pick(ctx, client, path, body)
	cancel()
	res.Stream = stream
	if set != nil && res.Destination != "" {
		req, _ := http.NewRequest("POST", "http://"+res.Destination+path, bytes.NewReader(payload))
		for k, v := range set {
			if !strings.HasPrefix(k, ":") && k != "content-length" {
				req.Header.Set(k, v)
			}
		}
		if resp, err := httpClient.Do(req); err != nil {
			res.Error = "request to " + res.Destination + ": " + err.Error()
		} else {
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.Status, res.Body = resp.StatusCode, string(data)
			if err != nil {
				res.Error = "reading the answer of " + res.Destination + ": " + err.Error()
			} else if res.Stream && res.Status == http.StatusOK && !strings.Contains(res.Body, "[DONE]") {
				res.Error = "the event stream ended before [DONE]"
			}
		}
	} else if res.Error == "" && res.Immediate == 0 {
		res.Error = "the picker named no destination"
	}
	return res
}

// cause names why a request failed, "" when it did not.
func cause(res *result) string {
	text := strings.ToLower(res.Error)
	switch {
	case res.Immediate != 0 || strings.HasPrefix(res.Error, "ext_proc") || strings.Contains(text, "picker"):
		return "picker"
	case strings.Contains(text, "connection refused"):
		return "connect_refused"
	case strings.Contains(text, "timeout") || strings.Contains(text, "deadline exceeded"):
		return "timeout"
	case strings.Contains(text, "reset") || strings.Contains(text, "eof") || strings.Contains(text, "broken pipe") ||
		strings.Contains(text, "before [done]"):
		return "reset"
	case res.Error != "":
		return "other"
	case res.Status >= 500:
		return "5xx"
	case res.Status != http.StatusOK:
		return "status"
	}
	return ""
}

func main() {
	epp := flag.String("epp", "", "the endpoint picker's ext_proc address, host:port")
	path := flag.String("path", "/v1/completions", "request path")
	body := flag.String("body", "", "request body (JSON)")
	count := flag.Int("n", 1, "requests to send")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	plaintext := flag.Bool("plaintext", false, "speak plain gRPC (the picker serves TLS unless its secureServing is off)")
	rate := flag.Float64("rate", 0, "load mode: requests started per second")
	duration := flag.Duration("duration", 0, "load mode: how long to start requests")
	streamEvery := flag.Int("stream", 2, "load mode: every Nth request streams (0: none)")
	flag.Parse()
	if *epp == "" || *body == "" || (*rate > 0) != (*duration > 0) {
		fmt.Fprintln(os.Stderr, "usage: extproc-client -epp HOST:PORT -body JSON [-path P] [-n N | -rate R -duration D [-stream N]]")
		os.Exit(2)
	}
	// The picker's certificate is self-signed, as a gateway meets it (Istio's DestinationRule skips verification).
	creds := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test client
	if *plaintext {
		creds = insecure.NewCredentials()
	}
	// Redial as a gateway does: Envoy opens a new connection to the picker for the next request, with no
	// backoff of its own, so a restarted picker serves the first request after it is Ready. gRPC's default
	// channel backoff (1 s growing 1.6x to 120 s) would fail requests for seconds after that and blame the
	// picker for the client.
	redial := grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1,
		MaxDelay: 100 * time.Millisecond}, MinConnectTimeout: 2 * time.Second}
	conn, err := grpc.NewClient(*epp, grpc.WithTransportCredentials(creds), grpc.WithConnectParams(redial))
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	httpClient := &http.Client{Timeout: *timeout}
	out := json.NewEncoder(os.Stdout)
	if *rate > 0 {
		load(client, httpClient, *path, *body, *timeout, *rate, *duration, *streamEvery, out)
		return
	}
	failed := false
	for i := 0; i < *count; i++ {
		res := send(client, httpClient, *path, []byte(*body), *timeout, false)
		failed = failed || res.Error != "" || res.Status != http.StatusOK
		_ = out.Encode(res)
	}
	if failed {
		os.Exit(1)
	}
}

// load starts requests at a steady rate for the duration (or until SIGTERM / SIGINT), then waits for the last to
// end; one line each.
func load(client extprocv3.ExternalProcessorClient, httpClient *http.Client, path, body string, timeout time.Duration,
	rate float64, duration time.Duration, streamEvery int, out *json.Encoder) {
	var streamed map[string]any
	if err := json.Unmarshal([]byte(body), &streamed); err != nil {
		fmt.Fprintln(os.Stderr, "body:", err)
		os.Exit(2)
	}
	streamed["stream"] = true
	streamBody, _ := json.Marshal(streamed)
	results := make(chan *result, 1024)
	done := make(chan struct{})
	go func() {
		for res := range results {
			// the records stay small: a failed request keeps the start of what it was told (whose 503 it was)
			if res.Cause == "" {
				res.Body = ""
			} else if len(res.Body) > 200 {
				res.Body = res.Body[:200]
			}
			_ = out.Encode(res)
		}
		close(done)
	}()
	ticker := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer ticker.Stop()
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	deadline := time.Now().Add(duration)
	pending := make(chan struct{}, 4096)
	for i := 0; ; i++ {
		select {
		case <-ticker.C:
		case <-stop.Done():
		}
		if stop.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		stream := streamEvery > 0 && i%streamEvery == streamEvery-1
		payload := []byte(body)
		if stream {
			payload = streamBody
		}
		pending <- struct{}{}
		go func(payload []byte, stream bool) {
			defer func() { <-pending }()
			started := time.Now()
			res := send(client, httpClient, path, payload, timeout, stream)
			res.Start = started.UnixMilli()
			res.LatencyMs = float64(time.Since(started).Microseconds()) / 1000
			res.Cause = cause(res)
			results <- res
		}(payload, stream)
	}
	for i := 0; i < cap(pending); i++ { // every request ended
		pending <- struct{}{}
	}
	close(results)
	<-done
}
