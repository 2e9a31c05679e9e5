package model

import (
	"time"

	"github.com/evidentsec/evident/internal/telemetry"
)

// A consumer that pulls messages, or receives or processes them in
// batches, has no producer's span for parent: its receive span's parent
// is its own context, if any, and each message's creation context, the
// PRODUCER span that sent it, is a link of its span (the semantic
// conventions' messaging spans; the OpenTelemetry Java agent's JMS and
// RabbitMQ receive spans, Google's Pub/Sub subscribe spans). The
// destination names do not tell the two apart where the producer names
// another destination than the consumer (a RabbitMQ exchange and its
// queue, a Pub/Sub topic and its subscription, an SNS topic and the SQS
// queue it feeds), so a link is joined as a parent is: the producer's
// service feeds the consumer's through the destination it consumed
// from (an edge, Store.Linked), whichever span arrives first, as long as
// the join tables' bound keeps the first.

// linkWait is a span of svc, consuming from its destination dest (nil
// for none kept), whose link names a PRODUCER span that has not arrived.
// The destination is svc's own Store, which lives as long as the model
// (UnmarshalBinary makes new ones, and empties the links table).
type linkWait struct {
	svc  *service
	dest *Store
}

// linkWaits are the spans waiting for one PRODUCER span: the first, and
// more (the subscriptions of one topic, the receive spans of a message
// received again).
type linkWaits struct {
	linkWait
	more []linkWait
}

// linkProducers joins the links of sp, a span of s that took messages from
// dest (nil for none kept), a destination (a CONSUMER span, or a CLIENT
// span that receives, processes or settles), to the PRODUCER spans they
// name, or makes them wait for those. A link to its own parent is the
// parent's join. The links the decoder did not keep are counted
// (Overflow.Links).
func (m *Model) linkProducers(s *service, sp *telemetry.Span, dest *Store, now time.Time, ch *Changes) {
	s.overflow.Links += int64(sp.LinksDropped)
	if len(sp.Links) == 0 {
		return
	}
	for _, l := range sp.Links {
		if l.SpanID == sp.ParentSpanID {
			continue
		}
		if c, _, ok := m.callers.lookup(l.SpanID); ok {
			if c.producer {
				m.joinLink(c, linkWait{svc: s, dest: dest}, ch)
			}
			continue
		}
		w, cur, ok := m.links.lookup(l.SpanID)
		switch {
		case !ok:
			w = linkWaits{linkWait: linkWait{svc: s, dest: dest}}
		case cur:
			w.more = append(w.more, linkWait{svc: s, dest: dest})
		default:
			m.links.remove(l.SpanID, cur)
			w.more = append(w.more, linkWait{svc: s, dest: dest})
		}
		m.links.put(l.SpanID, w)
	}
}

// joinWaitingLinks joins the spans waiting for c, the PRODUCER span id,
// that arrived after them.
func (m *Model) joinWaitingLinks(id [8]byte, c caller, ch *Changes) {
	w, cur, ok := m.links.lookup(id)
	if !ok {
		return
	}
	m.links.remove(id, cur)
	m.joinLink(c, w.linkWait, ch)
	for _, l := range w.more {
		m.joinLink(c, l, ch)
	}
}

// joinLink records that the message c, a PRODUCER span, sent was
// consumed by l's span: an edge from c's service to l's, and l's
// destination known fed by a traced service (Store.Linked). A message of
// the service's own tells nothing of who feeds it.
func (m *Model) joinLink(c caller, l linkWait, ch *Changes) {
	if c.svc == l.svc {
		return
	}
	m.edge(c, l.svc, 1, ch)
	if l.dest != nil {
		l.dest.Linked++
	}
}

// fedThrough reports whether sp, a CONSUMER span that starts a trace,
// took its input through the destination it names, so that the
// destination's producers tell whose input it is, as for a process span
// under the service's own receive span (SpanCounts.Own), and it is no
// entry point: its links to the messages' creation contexts say so, or
// it is a receive span, which takes a batch of messages and has none of
// their contexts for parent (the semantic conventions gave receive spans
// the kind CONSUMER until v1.24, and the OpenTelemetry Java agent's Kafka
// receive span has it). A process span with neither came with no
// context: who sent its message is not known to be traced. A destination
// beyond max_stores counts too: the service's Overflow.Consumes then
// leaves who feeds it unknown.
func fedThrough(sp *telemetry.Span) bool {
	a := &sp.Attrs
	return sp.Kind == telemetry.SpanKindConsumer && a.MessagingDestination != "" && (len(sp.Links) > 0 || a.MessagingOperation == "receive")
}
