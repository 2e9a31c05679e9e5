package listener

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// WriteGRPCStatus answers a gRPC call served by an http.Handler with st
// alone, before anything else of the answer is written: a Trailers-Only
// response (HTTP 200 whose headers carry
// grpc-status, grpc-message and, when st has details, such as a
// RetryInfo, grpc-status-details-bin), which gRPC clients read as they
// read the status of a call that ran (gRPC over HTTP/2, PROTOCOL-HTTP2.md
// in grpc/grpc). The request's body is not read.
func WriteGRPCStatus(w http.ResponseWriter, st *status.Status) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(st.Code())))
	if msg := st.Message(); msg != "" {
		h.Set("Grpc-Message", percentEncode(msg))
	}
	if p := st.Proto(); len(p.GetDetails()) > 0 {
		if b, err := proto.Marshal(p); err == nil {
			h.Set("Grpc-Status-Details-Bin", base64.RawStdEncoding.EncodeToString(b))
		}
	}
	w.WriteHeader(http.StatusOK)
}

// percentEncode encodes a grpc-message: every byte outside printable
// ASCII, and '%', as %XX.
func percentEncode(msg string) string {
	plain := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			plain = false
			break
		}
	}
	if plain {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(msg[i])
	}
	return b.String()
}
