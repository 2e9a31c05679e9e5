package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evidentsec/evident/internal/model"
)

// The state of the scaled-out deployment (docs/scaling.md, migration
// 0002): the engines' shards with the Kafka offset they reached, the
// calls waiting to be joined across shards, and the joins made. These
// methods are the PostgreSQL store's own, beyond store.Store: only the
// roles of a scaled-out evident use them, and only on PostgreSQL.

// ErrStaleCheckpoint is returned by CheckpointPartition when another
// engine claimed the partition since the checkpoint's owner did, or the
// stored offset of the partition is past the checkpoint's: another
// engine has the partition now.
var ErrStaleCheckpoint = errors.New("the partition's stored checkpoint is newer")

// Shard is the state of one tenant's services in one partition of the
// ingest log, as an engine checkpoints it.
type Shard struct {
	Tenant string
	// State is the model's MarshalBinary.
	State []byte
	// Pending are the calls the model did not join (model.TakePending):
	// they wait in the store for their other side.
	Pending model.Pending
}

// Partition is the checkpoint of one partition: its shards as of Next,
// the offset after the last record their states hold. Shards not given
// keep their stored state. Owner is what ClaimPartition returned to the
// engine that checkpoints.
type Partition struct {
	Partition int32
	Owner     int64
	Next      int64
	Shards    []Shard
}

// CheckpointPartition stores one partition's checkpoint; it is
// CheckpointPartitions of one, with a stale checkpoint an
// ErrStaleCheckpoint.
func (s *Store) CheckpointPartition(ctx context.Context, partition int32, owner, next int64, shards []Shard) error {
	stale, err := s.CheckpointPartitions(ctx, []Partition{{Partition: partition, Owner: owner, Next: next, Shards: shards}})
	if err == nil && len(stale) > 0 {
		err = fmt.Errorf("checkpoint partition %d: %w: offset %d", partition, ErrStaleCheckpoint, next)
	}
	return err
}

// CheckpointPartitions stores the checkpoints of partitions, with their
// shards' pending calls, in one transaction (one commit for an engine's
// every partition). A partition claimed by another owner since, or whose
// stored offset is past its checkpoint's, is left as it is, its pending
// calls are not handed to the join, and it is returned in stale: another
// engine has it now, and hands those calls over itself when it applies
// their records.
func (s *Store) CheckpointPartitions(ctx context.Context, parts []Partition) (stale []int32, err error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("checkpoint partitions: %w", err)
	}
	defer s.calls.Leave()
	now := time.Now().UnixNano()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		stale = nil
		var (
			b  pgx.Batch
			cr pendingRows
		)
		for _, part := range parts {
			var p int32
			err := tx.QueryRow(ctx, `INSERT INTO shard_offsets (partition, next, updated_at, owner) VALUES ($1, $2, $3, $4)
				ON CONFLICT (partition) DO UPDATE SET next = excluded.next, updated_at = excluded.updated_at
				WHERE shard_offsets.owner = excluded.owner AND shard_offsets.next <= excluded.next RETURNING partition`,
				part.Partition, part.Next, now, part.Owner).Scan(&p)
			if errors.Is(err, pgx.ErrNoRows) {
				stale = append(stale, part.Partition)
				continue
			}
			if err != nil {
				return err
			}
			for _, sh := range part.Shards {
				b.Queue(`INSERT INTO shards (tenant, partition, state, updated_at) VALUES ($1, $2, $3, $4)
					ON CONFLICT (tenant, partition) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
					sh.Tenant, part.Partition, sh.State, now)
				cr.add(sh.Tenant, sh.Pending)
			}
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		// A record applied twice (by an engine that lost the partition
		// and the one that has it) hands over the same call twice; the
		// first stays. Arrays, one statement a table: a COPY cannot skip
		// duplicates.
		if len(cr.callerIDs) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO join_callers (tenant, span_id, service, host, error, producer, start_ns, end_ns, added_at)
				SELECT t, id, svc, h, e, p, s, f, $9 FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::bool[], $6::bool[], $7::bigint[], $8::bigint[]) AS u(t, id, svc, h, e, p, s, f)
				ON CONFLICT DO NOTHING`, cr.callerTenants, cr.callerIDs, cr.callerServices, cr.hosts, cr.callerErrors, cr.producers, cr.starts, cr.ends, now); err != nil {
				return err
			}
		}
		if len(cr.calleeIDs) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO join_callees (tenant, span_id, service, callee_span_id, at)
				SELECT t, id, svc, own, a FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bytea[], $5::bigint[]) AS u(t, id, svc, own, a)
				ON CONFLICT DO NOTHING`, cr.calleeTenants, cr.calleeIDs, cr.calleeServices, cr.calleeOwnIDs, cr.calleeAts); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint partitions into %s: %w", s.where, err)
	}
	return stale, nil
}

// Checkpointed returns those of parts whose checkpoint is the stored
// one: the partition's offset names the part's Owner and Next. An error
// of CheckpointPartitions may come after its commit (the connection
// dropped before the answer); a partition it returns was checkpointed,
// its pending calls handed over, and the engine must not wait for them
// too. Each part's Next must be past the offset its claim read or its
// last committed checkpoint stored: ClaimPartition stores the claim's
// owner with the offset it read, so a part at that offset is reported
// checkpointed though nothing committed (the Applier writes only the
// partitions past partition.stored).
func (s *Store) Checkpointed(ctx context.Context, parts []Partition) ([]int32, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read the partitions' offsets: %w", err)
	}
	defer s.calls.Leave()
	ps, owners, nexts := make([]int32, len(parts)), make([]int64, len(parts)), make([]int64, len(parts))
	for i, p := range parts {
		ps[i], owners[i], nexts[i] = p.Partition, p.Owner, p.Next
	}
	rows, err := s.pool.Query(ctx, `SELECT o.partition FROM shard_offsets o
		JOIN unnest($1::integer[], $2::bigint[], $3::bigint[]) AS p(partition, owner, next)
		ON o.partition = p.partition AND o.owner = p.owner AND o.next = p.next`, ps, owners, nexts)
	if err != nil {
		return nil, fmt.Errorf("read the partitions' offsets from %s: %w", s.where, err)
	}
	var done []int32
	var p int32
	if _, err := pgx.ForEachRow(rows, []any{&p}, func() error {
		done = append(done, p)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the partitions' offsets from %s: %w", s.where, err)
	}
	return done, nil
}

// pendingRows are pending calls as the columns of their tables.
type pendingRows struct {
	callerTenants, callerServices, hosts []string
	callerIDs                            [][]byte
	callerErrors, producers              []bool
	starts, ends                         []int64
	calleeTenants, calleeServices        []string
	calleeIDs, calleeOwnIDs              [][]byte // the parent's span id, the callee's
	calleeAts                            []int64
}

func (r *pendingRows) add(tenant string, p model.Pending) {
	for _, c := range p.Callers {
		r.callerTenants, r.callerServices, r.hosts = append(r.callerTenants, tenant), append(r.callerServices, c.Service), append(r.hosts, c.Host)
		r.callerIDs, r.callerErrors, r.producers = append(r.callerIDs, c.SpanID[:]), append(r.callerErrors, c.Error), append(r.producers, c.Producer)
		r.starts, r.ends = append(r.starts, c.Start.UnixNano()), append(r.ends, c.End.UnixNano())
	}
	for _, c := range p.Callees {
		r.calleeTenants, r.calleeServices = append(r.calleeTenants, tenant), append(r.calleeServices, c.Service)
		r.calleeIDs, r.calleeOwnIDs, r.calleeAts = append(r.calleeIDs, c.ParentSpanID[:]), append(r.calleeOwnIDs, c.SpanID[:]), append(r.calleeAts, c.At.UnixNano())
	}
}

// ClaimPartition makes the caller the owner of partition and returns
// the owner number its checkpoints must name, the stored offset (-1 when
// it was never checkpointed) and the states of its shards, by tenant.
// From then on, the checkpoints of the partition's previous owner are
// stale. The claim waits for a checkpoint of the partition in progress,
// and reads the states it wrote.
func (s *Store) ClaimPartition(ctx context.Context, partition int32) (next, owner int64, states map[string][]byte, err error) {
	if err := s.calls.Enter(); err != nil {
		return 0, 0, nil, fmt.Errorf("claim partition %d: %w", partition, err)
	}
	defer s.calls.Leave()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Read committed: the shards read below are those of the offset
		// the upsert returns, which waited for any checkpoint of the row.
		if err := tx.QueryRow(ctx, `INSERT INTO shard_offsets (partition, next, updated_at, owner) VALUES ($1, -1, $2, 1)
			ON CONFLICT (partition) DO UPDATE SET owner = shard_offsets.owner + 1 RETURNING next, owner`,
			partition, time.Now().UnixNano()).Scan(&next, &owner); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT tenant, state FROM shards WHERE partition = $1`, partition)
		if err != nil {
			return err
		}
		states = map[string][]byte{}
		var (
			tenant string
			state  []byte
		)
		_, err = pgx.ForEachRow(rows, []any{&tenant, &state}, func() error {
			states[tenant] = state
			return nil
		})
		return err
	})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("claim partition %d in %s: %w", partition, s.where, err)
	}
	return next, owner, states, nil
}

// joinLock is the key of the transaction advisory lock the joiner holds:
// one join at a time over the whole database.
const joinLock = "evident join"

// Join matches the pending callers and callees of every tenant by span
// id and adds what the calls show (model.JoinCalls) to the tenants'
// joins, in one transaction: a matched callee is done, and its caller is
// deleted unless more than one span joins it (the producer column,
// model.PendingCaller.Producer): a PRODUCER span waits for every consumer
// of its message, a receive span for the process span of each message of
// its batch. A callee of the caller's own service counts in
// join_linked.own, not spans (model.SpanCounts.Own). It then ends the
// wait of what was added before now-window: a caller is deleted, and a
// callee is counted as unlinked (its caller is not traced) and done, as
// one model counts them when its join window passes. A done callee is
// kept until now-2*window, so that the same one handed over again counts
// nothing. Joins run one at a time across every process.
func (s *Store) Join(ctx context.Context, now time.Time, window time.Duration) (joined, expired int64, err error) {
	if err := s.calls.Enter(); err != nil {
		return 0, 0, fmt.Errorf("join calls: %w", err)
	}
	defer s.calls.Leave()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		joined, expired = 0, 0
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || current_schema(), 0))`, joinLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE join_callees e SET done = true FROM join_callers c
			WHERE c.tenant = e.tenant AND c.span_id = e.span_id AND NOT e.done
			RETURNING e.tenant, e.span_id, e.service, c.service, c.host, c.error, c.producer, c.start_ns, c.end_ns`)
		if err != nil {
			return err
		}
		byTenant := map[string][]model.JoinedCall{}
		var tenants []string
		var ids [][]byte
		var (
			tenant, callee string
			id             []byte
			c              model.PendingCaller
			start, end     int64
		)
		_, err = pgx.ForEachRow(rows, []any{&tenant, &id, &callee, &c.Service, &c.Host, &c.Error, &c.Producer, &start, &end}, func() error {
			c.Start, c.End = time.Unix(0, start).UTC(), time.Unix(0, end).UTC()
			copy(c.SpanID[:], id)
			byTenant[tenant] = append(byTenant[tenant], model.JoinedCall{Caller: c, Callee: callee})
			if !c.Producer {
				tenants, ids = append(tenants, tenant), append(ids, append([]byte(nil), id...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM join_callers c USING unnest($1::text[], $2::bytea[]) AS m(tenant, span_id)
				WHERE c.tenant = m.tenant AND c.span_id = m.span_id`, tenants, ids); err != nil {
				return err
			}
		}
		var b pgx.Batch
		for tenant, calls := range byTenant {
			joined += int64(len(calls))
			j := model.JoinCalls(calls)
			for _, e := range j.Edges {
				b.Queue(`INSERT INTO join_edges (tenant, caller, callee, calls, errors, first_ns, last_ns) VALUES ($1, $2, $3, $4, $5, $6, $7)
					ON CONFLICT (tenant, caller, callee) DO UPDATE SET calls = join_edges.calls + excluded.calls,
						errors = join_edges.errors + excluded.errors, first_ns = LEAST(join_edges.first_ns, excluded.first_ns),
						last_ns = GREATEST(join_edges.last_ns, excluded.last_ns)`,
					tenant, e.From, e.To, e.Calls, e.Errors, e.First.UnixNano(), e.Last.UnixNano())
			}
			for svc, n := range j.Linked {
				b.Queue(`INSERT INTO join_linked (tenant, service, spans) VALUES ($1, $2, $3)
					ON CONFLICT (tenant, service) DO UPDATE SET spans = join_linked.spans + excluded.spans`, tenant, svc, n)
			}
			for svc, n := range j.Own {
				b.Queue(`INSERT INTO join_linked (tenant, service, spans, own) VALUES ($1, $2, 0, $3)
					ON CONFLICT (tenant, service) DO UPDATE SET own = join_linked.own + excluded.own`, tenant, svc, n)
			}
			for _, r := range j.Resolved {
				b.Queue(`INSERT INTO join_resolved (tenant, service, host, callee, calls) VALUES ($1, $2, $3, $4, $5)
					ON CONFLICT (tenant, service, host, callee) DO UPDATE SET calls = join_resolved.calls + excluded.calls`,
					tenant, r.Service, r.Host, r.Callee, r.Calls)
			}
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			return err
		}
		cutoff := now.Add(-window).UnixNano()
		tag, err := tx.Exec(ctx, `DELETE FROM join_callers WHERE added_at < $1`, cutoff)
		if err != nil {
			return err
		}
		expired += tag.RowsAffected()
		tag, err = tx.Exec(ctx, `WITH gone AS (UPDATE join_callees SET done = true WHERE NOT done AND at < $1 RETURNING tenant, service)
			INSERT INTO join_linked (tenant, service, spans, unlinked) SELECT tenant, service, 0, count(*) FROM gone GROUP BY tenant, service
			ON CONFLICT (tenant, service) DO UPDATE SET unlinked = join_linked.unlinked + excluded.unlinked`, cutoff)
		if err != nil {
			return err
		}
		expired += tag.RowsAffected() // services, not spans: the callers above are spans
		// A callee the join is done with stays a window more, so that
		// the same one handed over again is skipped (migration 0009).
		_, err = tx.Exec(ctx, `DELETE FROM join_callees WHERE done AND at < $1`, now.Add(-2*window).UnixNano())
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("join calls in %s: %w", s.where, err)
	}
	return joined, expired, nil
}

// View returns what the tenant's merged model is made of: the states of
// its shards and the joins of the calls between them, read in one
// snapshot of the database, so that a call handed over by a checkpoint
// is in the shard's state or in the joins, never in both nor neither.
func (s *Store) View(ctx context.Context) (states [][]byte, joins model.Joins, err error) {
	if err := s.calls.Enter(); err != nil {
		return nil, joins, fmt.Errorf("read the shards: %w", err)
	}
	defer s.calls.Leave()
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		states, joins = nil, model.Joins{Linked: map[string]int64{}, Own: map[string]int64{}, Pending: map[string]int64{}, Unlinked: map[string]int64{}}
		rows, err := tx.Query(ctx, `SELECT state FROM shards WHERE tenant = $1 ORDER BY partition`, s.tenant)
		if err != nil {
			return err
		}
		var state []byte
		if _, err := pgx.ForEachRow(rows, []any{&state}, func() error {
			states = append(states, state)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT caller, callee, calls, errors, first_ns, last_ns FROM join_edges WHERE tenant = $1`, s.tenant)
		if err != nil {
			return err
		}
		var (
			e           model.Edge
			first, last int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&e.From, &e.To, &e.Calls, &e.Errors, &first, &last}, func() error {
			e.First, e.Last = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
			joins.Edges = append(joins.Edges, e)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT service, spans, own, unlinked FROM join_linked WHERE tenant = $1`, s.tenant)
		if err != nil {
			return err
		}
		var (
			svc              string
			n, own, unlinked int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&svc, &n, &own, &unlinked}, func() error {
			if n > 0 {
				joins.Linked[svc] = n
			}
			if own > 0 {
				joins.Own[svc] = own
			}
			if unlinked > 0 {
				joins.Unlinked[svc] = unlinked
			}
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT service, count(*) FROM join_callees WHERE tenant = $1 AND NOT done GROUP BY service`, s.tenant)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&svc, &n}, func() error {
			joins.Pending[svc] = n
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT service, host, callee, calls FROM join_resolved WHERE tenant = $1`, s.tenant)
		if err != nil {
			return err
		}
		var r model.Resolution
		_, err = pgx.ForEachRow(rows, []any{&r.Service, &r.Host, &r.Callee, &r.Calls}, func() error {
			joins.Resolved = append(joins.Resolved, r)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, joins, fmt.Errorf("read the shards of %s: %w", s.where, err)
	}
	return states, joins, nil
}

// FindingsVersions returns, for each tenant whose findings were ever
// stored, a number that changes whenever they change.
func (s *Store) FindingsVersions(ctx context.Context) (map[string]int64, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read the findings versions: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, `SELECT tenant, version FROM findings_versions`)
	if err != nil {
		return nil, fmt.Errorf("read the findings versions from %s: %w", s.where, err)
	}
	versions := make(map[string]int64)
	var (
		tenant  string
		version int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&tenant, &version}, func() error {
		versions[tenant] = version
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the findings versions from %s: %w", s.where, err)
	}
	return versions, nil
}

// ViewVersions returns, for each tenant that has shards, a text that
// changes whenever what View reads of the tenant changes: the partition
// and updated_at of each of its shards (a checkpoint writes the pending
// calls it hands over with their tenant's shard) and the version of its
// joins (migration 6: each statement of the join that changes a tenant's
// rows increments it). Read in one statement, so of one snapshot.
func (s *Store) ViewVersions(ctx context.Context) (map[string]string, error) {
	if err := s.calls.Enter(); err != nil {
		return nil, fmt.Errorf("read the views' versions: %w", err)
	}
	defer s.calls.Leave()
	rows, err := s.pool.Query(ctx, `SELECT s.tenant, s.shards || ' joins ' || COALESCE(j.version, 0)
		FROM (SELECT tenant, string_agg(partition || ':' || updated_at, ',' ORDER BY partition) AS shards FROM shards GROUP BY tenant) s
		LEFT JOIN join_versions j ON j.tenant = s.tenant`)
	if err != nil {
		return nil, fmt.Errorf("read the views' versions from %s: %w", s.where, err)
	}
	versions := make(map[string]string)
	var tenant, version string
	if _, err := pgx.ForEachRow(rows, []any{&tenant, &version}, func() error {
		versions[tenant] = version
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the views' versions from %s: %w", s.where, err)
	}
	return versions, nil
}
