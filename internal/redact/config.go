package redact

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Config selects what is masked. The zero value masks nothing; DefaultConfig
// turns every built-in rule on.
type Config struct {
	// Enabled turns redaction on; off, spans are stored and alerts sent
	// verbatim.
	Enabled bool `yaml:"enabled"`
	// Mask replaces a masked value. SQL literals become "?" whatever it
	// is.
	Mask string `yaml:"mask"`
	// Names are case-insensitive substrings: a query parameter or a
	// captured request header whose name contains one has its value
	// masked. Setting the list replaces the built-in one.
	Names []string `yaml:"names"`
	// QueryNames are URL query and fragment parameter names
	// (case-insensitive) whose values are masked, matched whole: names
	// too short or too common to be looked for inside other names, as
	// Names are (an Azure SAS's sig, which "design" contains; an OAuth
	// authorization code's code, which "country_code" does). Setting the
	// list replaces the built-in one.
	QueryNames []string `yaml:"query_names"`
	// Headers are request header names (case-insensitive) whose values
	// are always masked, whatever Names says.
	Headers []string `yaml:"headers"`
	// NamePatterns are RE2 expressions over parameter and header names,
	// in addition to Names.
	NamePatterns []string `yaml:"name_patterns"`
	// AllowNames are RE2 expressions over parameter and header names that
	// are never masked by name (a "keyword" parameter that Names' "key"
	// would catch).
	AllowNames []string `yaml:"allow_names"`
	// SQL replaces string, numeric and dollar-quoted literals in
	// db.query.text (db.statement) with "?", as the OpenTelemetry
	// statement sanitizers do.
	SQL bool `yaml:"sql"`
	// Credentials masks the user and password of URLs
	// (scheme://user:pass@host) in every text attribute.
	Credentials bool `yaml:"credentials"`
	// Tokens masks JSON Web Tokens (base64url header starting "eyJ",
	// payload and signature, separated by dots) wherever they appear: a
	// bearer token in a path, a parameter or free text whose name says
	// nothing.
	Tokens bool `yaml:"tokens"`
	// Pairs masks, in every text attribute, the value of a name=value
	// pair whose name Names or NamePatterns match and AllowNames do not
	// (a connection string's Password=...;, a JDBC URL's password=, a
	// command line's --token=), and of a quoted "name": "value" pair (JSON).
	Pairs bool `yaml:"pairs"`
	// Emails masks e-mail addresses (also with the "@" written %40).
	Emails bool `yaml:"emails"`
	// CardNumbers masks Luhn-valid runs of 13 to 19 digits that start
	// with 2 to 6, as payment card numbers do; single spaces, dashes or
	// "+" may separate digit groups.
	CardNumbers bool `yaml:"card_numbers"`
	// ValuePatterns are RE2 expressions; what they match in a text
	// attribute is masked.
	ValuePatterns []string `yaml:"value_patterns"`
	// AllowValues are RE2 expressions: an e-mail address, card number or
	// ValuePatterns match that one of them matches is kept.
	AllowValues []string `yaml:"allow_values"`
}

// DefaultConfig masks values named like secrets (in parameters, headers
// and pairs in text), authentication headers and cookies, SQL literals,
// URL credentials, JSON Web Tokens, e-mail
// addresses and card numbers, with "REDACTED" (the value the OpenTelemetry semantic
// conventions give for url.full credentials).
func DefaultConfig() Config {
	return Config{
		Enabled: true,
		Mask:    "REDACTED",
		Names: []string{
			"token", "key", "secret", "password", "passwd", "pwd", "auth", "session", "signature", "credential",
		},
		QueryNames:  []string{"sig", "code"},
		Headers:     []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"},
		SQL:         true,
		Credentials: true,
		Tokens:      true,
		Pairs:       true,
		Emails:      true,
		CardNumbers: true,
	}
}

// ErrInvalidConfig is wrapped by the errors of Validate and New.
var ErrInvalidConfig = errors.New("invalid redaction configuration")

// Validate reports every problem in c.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// compiled is a checked Config.
type compiled struct {
	names                                       [][]byte
	headers, queryNames                         []string
	namePatterns, allowNames, values, allowVals []*regexp.Regexp
	// minName is the length of the shortest of names: a shorter name
	// contains none (and decoding only shortens one).
	minName int
}

func (c Config) compile() (compiled, error) {
	var out compiled
	var errs []error
	if !c.Enabled {
		return out, nil
	}
	if c.Mask == "" {
		errs = append(errs, fmt.Errorf("%w: mask is empty", ErrInvalidConfig))
	}
	lower := func(key string, in []string) []string {
		out := make([]string, 0, len(in))
		for i, s := range in {
			if s == "" {
				errs = append(errs, fmt.Errorf("%w: %s[%d] is empty", ErrInvalidConfig, key, i))
				continue
			}
			out = append(out, strings.ToLower(s))
		}
		return out
	}
	for _, n := range lower("names", c.Names) {
		out.names = append(out.names, []byte(n))
		if out.minName == 0 || len(n) < out.minName {
			out.minName = len(n)
		}
	}
	out.headers = lower("headers", c.Headers)
	out.queryNames = lower("query_names", c.QueryNames)
	res := func(key string, in []string, fold bool) []*regexp.Regexp {
		var out []*regexp.Regexp
		for i, s := range in {
			expr := s
			if fold {
				expr = "(?i)" + s
			}
			re, err := regexp.Compile(expr)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%w: %s[%d] %q: %w", ErrInvalidConfig, key, i, s, err))
			case re.MatchString(""):
				errs = append(errs, fmt.Errorf("%w: %s[%d] %q matches the empty string", ErrInvalidConfig, key, i, s))
			default:
				out = append(out, re)
			}
		}
		return out
	}
	out.namePatterns = res("name_patterns", c.NamePatterns, true)
	out.allowNames = res("allow_names", c.AllowNames, true)
	out.values = res("value_patterns", c.ValuePatterns, false)
	out.allowVals = res("allow_values", c.AllowValues, false)
	return out, errors.Join(errs...)
}
