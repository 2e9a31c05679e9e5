package telemetry

import (
	"math/bits"
	"strconv"
	"strings"
)

// attrID names a span attribute evident keeps. Current semantic-convention
// names and their deprecated predecessors get distinct ids because the
// current name wins whatever the order of attributes (protocols.md §9).
type attrID uint8

const (
	attrNone attrID = iota
	attrHTTPMethod
	attrHTTPRoute
	attrURLPath
	attrURLQuery
	attrURLFull
	attrUserAgent
	attrStatusCode
	attrRPCSystem
	attrRPCService
	attrRPCMethod
	attrServerAddress
	attrServerPort
	attrClientAddress
	attrPeerService
	attrDBSystem
	attrDBNamespace
	attrDBCollection
	attrDBQueryText
	attrDBOperation
	attrMessagingSystem
	attrMessagingDestination
	attrMessagingOperation
	attrS3Bucket
	attrCodeFunction
	attrRequestBodySize
	attrServiceName      // resource
	attrServiceNamespace // resource
	attrImageName        // resource
	attrImageDigest      // resource
	attrImageRepoDigests // resource, an array
	attrImageTags        // resource, an array

	// Deprecated names, applied in finish when the current name is absent.
	attrOldHTTPMethod
	attrOldHTTPTarget
	attrOldHTTPURL
	attrOldUserAgent
	attrOldStatusCode
	attrOldRPCSystem
	attrOldNetPeerName
	attrOldNetPeerPort
	attrOldNetHostName
	attrOldNetHostPort
	attrOldClientIP
	attrOldPeerAddress
	attrOldPeerService
	attrOldDBSystem
	attrOldDBName
	attrOldDBTable
	attrOldDBStatement
	attrOldDBOperation
	attrOldMessagingDestination
	attrOldMessagingOperation
	attrOldCodeFunction
	attrOldCodeNamespace
	attrOldRequestContentLength

	numAttrs
)

// headerPrefix starts the attributes holding captured request headers.
const headerPrefix = "http.request.header."

// lookupAttr returns the id of a span or resource attribute key. The
// switch on string(key) compiles to comparisons without converting key.
func lookupAttr(key []byte) attrID {
	switch string(key) {
	case "http.request.method":
		return attrHTTPMethod
	case "http.route":
		return attrHTTPRoute
	case "url.path":
		return attrURLPath
	case "url.query":
		return attrURLQuery
	case "url.full":
		return attrURLFull
	case "user_agent.original":
		return attrUserAgent
	case "http.response.status_code":
		return attrStatusCode
	case "rpc.system.name":
		return attrRPCSystem
	case "rpc.service":
		return attrRPCService
	case "rpc.method":
		return attrRPCMethod
	case "server.address":
		return attrServerAddress
	case "server.port":
		return attrServerPort
	case "client.address":
		return attrClientAddress
	case "service.peer.name":
		return attrPeerService
	case "db.system.name":
		return attrDBSystem
	case "db.namespace":
		return attrDBNamespace
	case "db.collection.name":
		return attrDBCollection
	case "db.query.text":
		return attrDBQueryText
	case "db.operation.name":
		return attrDBOperation
	case "messaging.system":
		return attrMessagingSystem
	case "messaging.destination.name":
		return attrMessagingDestination
	case "messaging.operation.type":
		return attrMessagingOperation
	case "aws.s3.bucket":
		return attrS3Bucket
	case "code.function.name":
		return attrCodeFunction
	case "http.request.body.size":
		return attrRequestBodySize
	case "service.name":
		return attrServiceName
	case "service.namespace":
		return attrServiceNamespace
	case "container.image.name":
		return attrImageName
	case "oci.manifest.digest":
		return attrImageDigest
	case "container.image.repo_digests":
		return attrImageRepoDigests
	case "container.image.tags":
		return attrImageTags
	case "http.method":
		return attrOldHTTPMethod
	case "http.target":
		return attrOldHTTPTarget
	case "http.url":
		return attrOldHTTPURL
	case "http.user_agent":
		return attrOldUserAgent
	case "http.status_code":
		return attrOldStatusCode
	case "rpc.system":
		return attrOldRPCSystem
	case "net.peer.name":
		return attrOldNetPeerName
	case "net.peer.port":
		return attrOldNetPeerPort
	case "net.host.name":
		return attrOldNetHostName
	case "net.host.port":
		return attrOldNetHostPort
	case "http.client_ip":
		return attrOldClientIP
	case "network.peer.address", "net.sock.peer.addr", "net.peer.ip":
		return attrOldPeerAddress
	case "peer.service":
		return attrOldPeerService
	case "db.system":
		return attrOldDBSystem
	case "db.name":
		return attrOldDBName
	case "db.sql.table", "db.mongodb.collection", "db.cassandra.table", "db.cosmosdb.container":
		return attrOldDBTable
	case "db.statement":
		return attrOldDBStatement
	case "db.operation":
		return attrOldDBOperation
	case "messaging.destination":
		return attrOldMessagingDestination
	case "messaging.operation":
		return attrOldMessagingOperation
	case "code.function":
		return attrOldCodeFunction
	case "code.namespace":
		return attrOldCodeNamespace
	case "http.request_content_length":
		return attrOldRequestContentLength
	}
	return attrNone
}

// attrBuilder collects the attributes of one span (or resource) and
// resolves deprecated names once the span kind is known.
type attrBuilder struct {
	strs [numAttrs]string
	ints [numAttrs]int64
	// set has bit id set for each attribute recorded in strs or ints, so
	// that reset clears those only: clearing every entry of every span
	// cost more than decoding it while the garbage collector ran (each
	// string a pointer it must see written).
	set     uint64
	headers map[string]string
	// lists holds the array attributes of a resource:
	// container.image.repo_digests and container.image.tags.
	lists map[attrID][]string
}

// isList reports whether an attribute is an array of strings.
func isList(id attrID) bool { return id == attrImageRepoDigests || id == attrImageTags }

// setList records an array attribute.
func (b *attrBuilder) setList(id attrID, values []string) {
	if b.lists == nil {
		b.lists = make(map[attrID][]string, 2)
	}
	b.lists[id] = values
}

// image returns the container image of a resource's attributes.
func (b *attrBuilder) image() *Image {
	return newImage(b.strs[attrImageName], b.strs[attrImageDigest], b.lists[attrImageRepoDigests], b.lists[attrImageTags])
}

// set's bits must cover every attribute.
const _ = 64 - numAttrs

func (b *attrBuilder) reset() {
	for m := b.set; m != 0; m &= m - 1 {
		id := bits.TrailingZeros64(m)
		b.strs[id], b.ints[id] = "", 0
	}
	b.set, b.headers, b.lists = 0, nil, nil
}

// setString records a string attribute. Numbers written as strings (a
// status code "200") are accepted for the integer attributes.
func (b *attrBuilder) setString(id attrID, v string) {
	switch id {
	case attrStatusCode, attrOldStatusCode, attrServerPort, attrOldNetPeerPort, attrOldNetHostPort, attrRequestBodySize, attrOldRequestContentLength:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			b.ints[id] = n
		}
	default:
		b.strs[id] = v
	}
	b.set |= 1 << id
}

// setInt records an integer attribute.
func (b *attrBuilder) setInt(id attrID, v int64) {
	switch id {
	case attrStatusCode, attrOldStatusCode, attrServerPort, attrOldNetPeerPort, attrOldNetHostPort, attrRequestBodySize, attrOldRequestContentLength:
		b.ints[id] = v
	default:
		b.strs[id] = strconv.FormatInt(v, 10)
	}
	b.set |= 1 << id
}

// setHeader records a captured request header; key is the full attribute
// name. The values of a header (an array in semconv) are joined by ", ",
// as HTTP itself folds repeated headers.
func (b *attrBuilder) setHeader(key string, values []string) {
	if b.headers == nil {
		b.headers = make(map[string]string, 4)
	}
	b.headers[strings.ToLower(key[len(headerPrefix):])] = strings.Join(values, ", ")
}

// finish sets every field of a, whatever it held, with deprecated names
// applied where the current ones are missing. Older conventions named
// the remote peer net.peer.* on both sides, so its meaning depends on
// the span kind. It writes the fields of a one by one: a whole Attrs
// copied into a span of the decoder's slice, or the span zeroed before,
// cost as much as decoding it while the garbage collector ran.
func (b *attrBuilder) finish(kind SpanKind, a *Attrs) {
	s, n := &b.strs, &b.ints
	or := func(cur, old attrID) string {
		if s[cur] != "" {
			return s[cur]
		}
		return s[old]
	}
	a.HTTPMethod = or(attrHTTPMethod, attrOldHTTPMethod)
	a.HTTPRoute = s[attrHTTPRoute]
	a.URLPath = s[attrURLPath]
	a.URLQuery = s[attrURLQuery]
	a.URLFull = or(attrURLFull, attrOldHTTPURL)
	a.UserAgent = or(attrUserAgent, attrOldUserAgent)
	a.StatusCode = int(n[attrStatusCode])
	a.RPCSystem = or(attrRPCSystem, attrOldRPCSystem)
	a.RPCService = s[attrRPCService]
	a.RPCMethod = s[attrRPCMethod]
	a.ServerAddress = s[attrServerAddress]
	a.ServerPort = int(n[attrServerPort])
	a.ClientAddress = s[attrClientAddress]
	a.PeerService = or(attrPeerService, attrOldPeerService)
	a.DBSystem = DBSystemName(or(attrDBSystem, attrOldDBSystem))
	a.DBNamespace = or(attrDBNamespace, attrOldDBName)
	a.DBCollection = or(attrDBCollection, attrOldDBTable)
	a.DBQueryText = or(attrDBQueryText, attrOldDBStatement)
	a.DBOperation = or(attrDBOperation, attrOldDBOperation)
	a.MessagingSystem = s[attrMessagingSystem]
	a.MessagingDestination = or(attrMessagingDestination, attrOldMessagingDestination)
	a.MessagingOperation = messagingOperation(or(attrMessagingOperation, attrOldMessagingOperation))
	a.S3Bucket = s[attrS3Bucket]
	a.CodeFunction = s[attrCodeFunction]
	a.RequestHeaders = b.headers
	a.RequestBodySize = n[attrRequestBodySize]
	if a.RequestBodySize == 0 {
		a.RequestBodySize = n[attrOldRequestContentLength]
	}
	if a.StatusCode == 0 {
		a.StatusCode = int(n[attrOldStatusCode])
	}
	if a.URLPath == "" && s[attrOldHTTPTarget] != "" {
		path, query, _ := strings.Cut(s[attrOldHTTPTarget], "?")
		a.URLPath = path
		if a.URLQuery == "" {
			a.URLQuery = query
		}
	}
	if kind == SpanKindServer {
		if a.ServerAddress == "" {
			a.ServerAddress = s[attrOldNetHostName]
		}
		if a.ServerPort == 0 {
			a.ServerPort = int(n[attrOldNetHostPort])
		}
		for _, id := range []attrID{attrOldClientIP, attrOldNetPeerName, attrOldPeerAddress} {
			if a.ClientAddress == "" {
				a.ClientAddress = s[id]
			}
		}
	} else {
		if a.ServerAddress == "" {
			a.ServerAddress = s[attrOldNetPeerName]
		}
		if a.ServerPort == 0 {
			a.ServerPort = int(n[attrOldNetPeerPort])
		}
	}
	if a.CodeFunction == "" && s[attrOldCodeFunction] != "" {
		// Before code.function.name was fully qualified, the class or
		// package lived in code.namespace.
		a.CodeFunction = s[attrOldCodeFunction]
		if ns := s[attrOldCodeNamespace]; ns != "" {
			a.CodeFunction = ns + "." + a.CodeFunction
		}
	}
}

// DBSystemName returns the db.system.name value of a database system
// named v: the value db.system.name gave the systems whose db.system
// value it renamed (semantic conventions v1.30.0, listed in
// docs/non-normative/db-migration.md), v itself otherwise. Values are
// compared as they are: the conventions define them in lower case and
// say nothing of other cases.
//
// The spans decode through it, whichever of the two attributes named the
// system, so that a database is one store whether its clients follow the
// old conventions or the new: an old value under the new name (an
// instrumentation that renamed the attribute first, or evident's own log
// written before it read the old values so) names the same system, as no
// old value that was renamed is a value of db.system.name.
//
// The values db.system.name removed (sybase, vertica, mssqlcompact, ...)
// are kept: other_sql, which the deprecated registry gives some of them,
// would make one store of different databases.
func DBSystemName(v string) string {
	switch v {
	case "adabas":
		return "softwareag.adabas"
	case "intersystems_cache", "cache":
		// cache is the older name of intersystems_cache in the
		// deprecated db.system registry.
		return "intersystems.cache"
	case "cosmosdb":
		return "azure.cosmosdb"
	case "db2":
		return "ibm.db2"
	case "dynamodb":
		return "aws.dynamodb"
	case "firebird":
		return "firebirdsql"
	case "h2":
		return "h2database"
	case "hanadb":
		return "sap.hana"
	case "informix":
		return "ibm.informix"
	case "ingres":
		return "actian.ingres"
	case "maxdb":
		return "sap.maxdb"
	case "mssql":
		return "microsoft.sql_server"
	case "netezza":
		return "ibm.netezza"
	case "oracle":
		return "oracle.db"
	case "redshift":
		return "aws.redshift"
	case "spanner":
		return "gcp.spanner"
	}
	return v
}

// messagingOperation returns the current value of a messaging operation
// type: publish and deliver, values of messaging.operation (semantic
// conventions v1.24 to v1.25) that messaging.operation.type kept as
// deprecated, were renamed send and process. Other values, the custom
// ones the conventions allow included, are kept as they are.
func messagingOperation(v string) string {
	switch v {
	case "publish":
		return "send"
	case "deliver":
		return "process"
	}
	return v
}

// spanError reports whether a span failed: status ERROR, or a server
// answering 5xx (HTTP semconv leaves the status unset for some servers).
func spanError(statusCode int32, kind SpanKind, a *Attrs) bool {
	return statusCode == 2 || (kind == SpanKindServer && a.StatusCode >= 500)
}
