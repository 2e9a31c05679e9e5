package alert

import (
	"context"
	"encoding/json"
	"html"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSlackEscapesEvidence holds that text an attacker chose (a request
// path, a matched payload, a host a span named) reaches Slack as text in
// every field of the message Slack renders as mrkdwn: the "text"
// fallback, which notifications and clients without blocks show, was
// the summary unescaped, so a request to /<!channel> notified the
// channel and <https://evil|click> was a link. A backtick closed the
// code span a value is shown in, and what followed it was formatted.
// Mattermost and Rocket.Chat, which take the same webhook, read the text
// as Markdown: @channel, @here and @all notified everyone, and
// [text](url) was a link that hid where it went.
func TestSlackEscapesEvidence(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Alert)
	}{
		{"summary mention", func(a *Alert) { a.Summary = "exploit payload in GET /<!channel> of shop" }},
		{"summary link", func(a *Alert) { a.Summary = "shop called <https://evil.example/|click here> for the first time" }},
		{"summary user mention", func(a *Alert) { a.Summary = "request rate of shop GET /<@U024BE7LH> is 9.0/s" }},
		{"endpoint", func(a *Alert) { a.Evidence.Endpoint = "GET /<!here>/<https://evil.example/|x>" }},
		{"endpoint breaks the code span", func(a *Alert) { a.Evidence.Endpoint = "GET /x` *urgent* _see_ ~this~ `" }},
		{"match breaks the code span", func(a *Alert) { a.Evidence.Match = "`<!channel>`" }},
		{"service", func(a *Alert) { a.Service = "shop`<!everyone>" }},
		{"tenant", func(a *Alert) { a.Tenant = "team`b <!channel>" }},
		// Mattermost and Rocket.Chat read the text as Markdown.
		{"summary markdown mentions", func(a *Alert) { a.Summary = "exploit payload in GET /@channel/@here?to=@all of shop @alice" }},
		{"summary markdown link", func(a *Alert) { a.Summary = "shop called [click here](https://evil.example/) for the first time" }},
		{"summary markdown image", func(a *Alert) { a.Summary = "request rate of shop GET /![x](https://evil.example/p.png) is 9.0/s" }},
		{"summary markdown link definition", func(a *Alert) { a.Summary = "shop called [x]\n[x]: https://evil.example/" }},
		{"endpoint markdown", func(a *Alert) { a.Evidence.Endpoint = "GET /@channel/[x](https://evil.example/)" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Alert{Alert: firstExec(), ID: "0123456789abcdef", Tenant: "team-b"}
			tt.mutate(&a)
			fields := sendSlack(t, a)
			for field, text := range fields {
				for _, bad := range []string{"<!", "<@", "<http", "](", "]:"} {
					if strings.Contains(text, bad) {
						t.Errorf("%s holds %q: %s", field, bad, text)
					}
				}
				if m := markdownMention.FindString(text); m != "" {
					t.Errorf("%s holds the mention %q: %s", field, m, text)
				}
			}
			// The section's own links are the only ones.
			if n := strings.Count(fields["section"], "<"); n != 0 {
				t.Errorf("section holds %d links, want none (no link prefix): %s", n, fields["section"])
			}
			// Each value keeps to its code span: the context's backticks
			// are the spans' own, two for each of kind, tenant, service,
			// and endpoint and match when set.
			want := 6
			if a.Evidence.Endpoint != "" {
				want += 2
			}
			if a.Evidence.Match != "" {
				want += 2
			}
			if n := strings.Count(fields["context"], "`"); n != want {
				t.Errorf("context holds %d backticks, want %d: %s", n, want, fields["context"])
			}
			// The escaping changes how the text reads as markup, not
			// what it says: without its zero-width spaces and entities,
			// it is the summary.
			if got := html.UnescapeString(strings.ReplaceAll(fields["text"], "\u200b", "")); got != "[HIGH] "+a.Summary {
				t.Errorf("text reads %q, want %q", got, "[HIGH] "+a.Summary)
			}
		})
	}
}

// markdownMention is a mention as Mattermost and Rocket.Chat read one.
var markdownMention = regexp.MustCompile(`@[\pL\pN_.-]`)

// TestSlackWithinBlockLimits holds that a message stays within Block
// Kit's 3000 characters per text object whatever a request chose: Slack
// refuses a longer one with a 400 that no retry helps, and the alert was
// lost. The values are cut, ending in "…".
func TestSlackWithinBlockLimits(t *testing.T) {
	long := strings.Repeat("&", 5000)
	tests := []struct {
		name   string
		mutate func(*Alert)
	}{
		{"summary", func(a *Alert) { a.Summary = "exploit payload in GET /" + long }},
		{"endpoint and match", func(a *Alert) {
			a.Evidence.Endpoint, a.Evidence.Match, a.Service, a.Tenant = "GET /"+long, long, long, long
		}},
		{"characters of several bytes", func(a *Alert) {
			a.Summary, a.Evidence.Endpoint = strings.Repeat("é", 5000), strings.Repeat("日", 5000)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Alert{Alert: firstExec(), ID: "0123456789abcdef", Link: "https://evident.example/ui/alerts?id=0123456789abcdef"}
			tt.mutate(&a)
			texts := sendSlack(t, a)
			for _, name := range []string{"section", "context"} {
				text := texts[name]
				if n := utf8.RuneCountInString(text); n > 3000 {
					t.Errorf("%s holds %d characters, over Block Kit's 3000", name, n)
				}
				if !utf8.ValidString(text) {
					t.Errorf("%s is not valid UTF-8: %.80q", name, text)
				}
			}
			if !strings.Contains(texts["section"]+texts["context"], "…") {
				t.Error("nothing was cut with …")
			}
		})
	}
}

// sendSlack sends a through a Slack sink to a server that stands in for
// Slack, and returns the texts of the message it posted: "text" (the
// fallback), "section" and "context".
func sendSlack(t *testing.T, a Alert) map[string]string {
	t.Helper()
	rec, srv := newCapture(t)
	s, err := NewSlack("slack", srv.URL+"/services/T0/B0/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	_, body := rec.last()
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Text     *struct{ Text string }  `json:"text"`
			Elements []struct{ Text string } `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Blocks) != 2 || got.Blocks[0].Text == nil || len(got.Blocks[1].Elements) != 1 {
		t.Fatalf("slack body = %s", body)
	}
	return map[string]string{"text": got.Text, "section": got.Blocks[0].Text.Text, "context": got.Blocks[1].Elements[0].Text}
}

// TestSlackFallbackLinks holds that the "text" fallback carries the
// alert's links as well as its title: Mattermost shows the fallback
// alone (it ignores Block Kit), and translates Slack's <url|text> links
// in it, so a Mattermost channel got a title and no way to the alert.
func TestSlackFallbackLinks(t *testing.T) {
	tests := []struct {
		name        string
		link, found string
		want        string
	}{
		{"none", "", "", "[HIGH] " + firstExec().Summary},
		{"alert", "https://evident.example/ui/alerts/0123456789abcdef", "",
			"[HIGH] " + firstExec().Summary + "\n<https://evident.example/ui/alerts/0123456789abcdef|alert 0123456789abcdef>"},
		{"alert and finding", "https://evident.example/ui/alerts/0123456789abcdef", "https://evident.example/ui/findings/GO-2022-0493",
			"[HIGH] " + firstExec().Summary + "\n<https://evident.example/ui/alerts/0123456789abcdef|alert 0123456789abcdef> · <https://evident.example/ui/findings/GO-2022-0493|finding>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Alert{Alert: firstExec(), ID: "0123456789abcdef", Link: tt.link, FindingLink: tt.found}
			texts := sendSlack(t, a)
			if texts["text"] != tt.want {
				t.Errorf("text = %q, want %q", texts["text"], tt.want)
			}
			if want := "*[HIGH] " + firstExec().Summary + "*" + strings.TrimPrefix(tt.want, "[HIGH] "+firstExec().Summary); texts["section"] != want {
				t.Errorf("section = %q, want %q", texts["section"], want)
			}
		})
	}
}
