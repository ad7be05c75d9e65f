// Command extproc-client routes OpenAI requests the way a gateway would, without one: it asks the endpoint
// picker over Envoy's ext_proc gRPC protocol where a request should go, applies the header and body mutations
// the picker returns, and sends the request to the picked endpoint. One JSON line per request on stdout.
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
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

const destinationKey = "x-gateway-destination-endpoint"

type result struct {
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

func main() {
	epp := flag.String("epp", "", "the endpoint picker's ext_proc address, host:port")
	path := flag.String("path", "/v1/completions", "request path")
	body := flag.String("body", "", "request body (JSON)")
	count := flag.Int("n", 1, "requests to send")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	plaintext := flag.Bool("plaintext", false, "speak plain gRPC (the picker serves TLS unless its secureServing is off)")
	flag.Parse()
	if *epp == "" || *body == "" {
		fmt.Fprintln(os.Stderr, "usage: extproc-client -epp HOST:PORT -body JSON [-path P] [-n N]")
		os.Exit(2)
	}
	// The picker's certificate is self-signed, as a gateway meets it (Istio's DestinationRule skips verification).
	creds := credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test client
	if *plaintext {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(*epp, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc:", err)
		os.Exit(1)
	}
	defer conn.Close()
	client := extprocv3.NewExternalProcessorClient(conn)
	httpClient := &http.Client{Timeout: *timeout}
	out := json.NewEncoder(os.Stdout)
	failed := false
	for i := 0; i < *count; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		res, set, payload := pick(ctx, client, *path, []byte(*body))
		cancel()
		if set != nil && res.Destination != "" {
			req, _ := http.NewRequest("POST", "http://"+res.Destination+*path, bytes.NewReader(payload))
			for k, v := range set {
				if !strings.HasPrefix(k, ":") && k != "content-length" {
					req.Header.Set(k, v)
				}
			}
			if resp, err := httpClient.Do(req); err != nil {
				res.Error = "request to " + res.Destination + ": " + err.Error()
			} else {
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				res.Status, res.Body = resp.StatusCode, string(data)
			}
		} else if res.Error == "" && res.Immediate == 0 {
			res.Error = "the picker named no destination"
		}
		failed = failed || res.Error != "" || res.Status != http.StatusOK
		_ = out.Encode(res)
	}
	if failed {
		os.Exit(1)
	}
}
