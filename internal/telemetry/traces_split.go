package telemetry

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ServiceRequest is the part of an OTLP trace request that holds the
// ResourceSpans of one service, as a request of its own.
type ServiceRequest struct {
	// Service is the service of its spans, as the decoder names them.
	Service string
	// Request is an ExportTraceServiceRequest in protobuf.
	Request []byte
}

// SplitTraceRequestByService splits req, an OTLP
// ExportTraceServiceRequest in protobuf as received, into one request per
// service of its ResourceSpans, in the order of each service's first:
// every ResourceSpans goes as received (its length prefix written anew),
// in order, into the request of its service, after the fields of req
// other than resource_spans, as received too. Its service is the one the
// decoder gives its spans (Span.Service), so each request decodes as the
// spans of req of that service, in order, and keeps everything else req
// came with, which encoding those spans again would drop. A request of
// one service is req itself. It fails when req, or the fields of one of
// its ResourceSpans, do not parse.
func SplitTraceRequestByService(req []byte) ([]ServiceRequest, error) {
	head, resources, err := fieldValues(req, 1)
	if err != nil {
		return nil, fmt.Errorf("trace request: %w", err)
	}
	d := traceDecoder{errs: &recordErrors{}}
	var parts []ServiceRequest
	var of [][][]byte // the ResourceSpans of each part
	at := map[string]int{}
	for i, rs := range resources {
		// The resource as decodeResourceSpans reads it, without its spans.
		d.res.reset()
		if err := forEachField(rs, func(f field) error {
			if f.num == rsResource && f.typ == protowire.BytesType {
				d.resource(f.b, "")
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("trace request: resource_spans %d: %w", i, err)
		}
		service := d.service()
		j, ok := at[service]
		if !ok {
			j = len(parts)
			at[service] = j
			parts = append(parts, ServiceRequest{Service: service})
			of = append(of, nil)
		}
		of[j] = append(of[j], rs)
	}
	if len(parts) == 1 {
		parts[0].Request = req
		return parts, nil
	}
	for j := range parts {
		n := len(head)
		for _, rs := range of[j] {
			n += 1 + protowire.SizeBytes(len(rs))
		}
		b := append(make([]byte, 0, n), head...)
		for _, rs := range of[j] {
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendBytes(b, rs)
		}
		parts[j].Request = b
	}
	return parts, nil
}

// SplitTraceRequest splits req, an OTLP ExportTraceServiceRequest in
// protobuf as received, into requests of at most limit bytes, in order,
// at the boundaries of its spans: each part holds a run of the spans as
// received, each under its ResourceSpans and ScopeSpans with their other
// fields as received (the resource, the scope, schema URLs and fields
// evident does not decode), the length prefixes written anew. So a
// request too large for one Kafka record keeps in the ingest log
// everything it came with, which encoding its decoded spans again would
// drop. A ResourceSpans or ScopeSpans without spans carries nothing to
// apply and is left out. It fails when req does not parse, or, with
// ErrTooLarge, when one span with its resource and scope takes more than
// limit.
func SplitTraceRequest(req []byte, limit int) ([][]byte, error) {
	// ExportTraceServiceRequest.resource_spans, ResourceSpans.scope_spans
	// and ScopeSpans.spans are each field 1, 2 and 2.
	head, resources, err := fieldValues(req, 1)
	if err != nil {
		return nil, fmt.Errorf("trace request: %w", err)
	}
	field := func(n int) int { return 1 + protowire.SizeBytes(n) } // tags of fields 1 and 2 take a byte
	type scope struct {
		head  []byte
		spans [][]byte
		size  int // of head and spans, framed
	}
	type resource struct {
		index  int // in req
		head   []byte
		scopes []scope
		size   int // of head and the closed scopes, framed
	}
	var (
		parts [][]byte
		cur   []resource
		done  int // the closed resources of cur, framed
	)
	// total is the size of cur as a request.
	total := func() int {
		n := len(head) + done
		if len(cur) > 0 {
			r := &cur[len(cur)-1]
			s := r.scopes[len(r.scopes)-1]
			n += field(r.size + field(s.size))
		}
		return n
	}
	flush := func() {
		b := append([]byte(nil), head...)
		for _, r := range cur {
			rn := len(r.head)
			for _, s := range r.scopes {
				rn += field(s.size)
			}
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(rn))
			b = append(b, r.head...)
			for _, s := range r.scopes {
				b = protowire.AppendTag(b, 2, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(s.size))
				b = append(b, s.head...)
				for _, sp := range s.spans {
					b = protowire.AppendTag(b, 2, protowire.BytesType)
					b = protowire.AppendBytes(b, sp)
				}
			}
		}
		parts = append(parts, b)
		cur, done = nil, 0
	}
	for ri, rs := range resources {
		rhead, scopes, err := fieldValues(rs, 2)
		if err != nil {
			return nil, fmt.Errorf("trace request: resource_spans %d: %w", ri, err)
		}
		for si, ss := range scopes {
			shead, spans, err := fieldValues(ss, 2)
			if err != nil {
				return nil, fmt.Errorf("trace request: resource_spans %d: scope_spans %d: %w", ri, si, err)
			}
			open := false // whether cur's last scope is this one
			for _, sp := range spans {
				for {
					if !open {
						// This scope, under this resource, opened in cur.
						if len(cur) == 0 || cur[len(cur)-1].index != ri {
							if len(cur) > 0 {
								r := &cur[len(cur)-1]
								done += field(r.size + field(r.scopes[len(r.scopes)-1].size))
							}
							cur = append(cur, resource{index: ri, head: rhead, size: len(rhead)})
						} else {
							r := &cur[len(cur)-1]
							r.size += field(r.scopes[len(r.scopes)-1].size)
						}
						r := &cur[len(cur)-1]
						r.scopes = append(r.scopes, scope{head: shead, size: len(shead)})
						open = true
					}
					r := &cur[len(cur)-1]
					s := &r.scopes[len(r.scopes)-1]
					s.spans = append(s.spans, sp)
					s.size += field(len(sp))
					if total() <= limit {
						break
					}
					if len(cur) == 1 && len(r.scopes) == 1 && len(s.spans) == 1 {
						return nil, fmt.Errorf("trace request: one span takes %d bytes with its resource and scope, more than %d: %w", total(), limit, ErrTooLarge)
					}
					// Over the limit: the part ends before this span,
					// which opens the next.
					s.spans = s.spans[:len(s.spans)-1]
					s.size -= field(len(sp))
					if len(s.spans) == 0 {
						r.scopes = r.scopes[:len(r.scopes)-1]
						if len(r.scopes) == 0 {
							cur = cur[:len(cur)-1]
						}
					}
					flush()
					open = false
				}
			}
		}
	}
	if len(cur) > 0 {
		flush()
	}
	return parts, nil
}
