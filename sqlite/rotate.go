package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/latchkey-dev/latchkey"
)

// Rotations are the auth server's hottest write: one per POST /token. With
// synchronous=FULL each transaction waits for an fsync, which on a virtual
// disk costs more than everything else a refresh does. So the store commits
// concurrent rotations together (group commit): one goroutine takes every
// rotation waiting when the previous commit ends, runs them in order in one
// transaction, each refused one leaving no trace, and commits once. Durability
// is unchanged, a rotation is acknowledged only after its commit, and a
// lone rotation still commits at once.
//
// In-process serialization also spares concurrent rotations SQLite's busy
// handler, which sleeps for milliseconds when writers collide.

// maxBatch bounds one group commit, so that a burst cannot hold the write
// lock (and readers' view of the newest tokens) for long.
const maxBatch = 64

const deleteRefreshToken = `DELETE FROM refresh_tokens WHERE hash = ?`

var errClosed = errors.New("store is closed")

type rotateReq struct {
	ctx context.Context
	r   latchkey.Rotation
	err chan error // buffered: the committer never waits for the caller
}

type rotator struct {
	reqs chan *rotateReq // unbuffered: a sent request is always committed or answered
	quit chan struct{}
	done chan struct{}
	stop sync.Once
}

func (s *Store) startRotator() {
	s.rot = &rotator{
		reqs: make(chan *rotateReq),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.commitRotations()
}

// stopRotator waits for the batch being committed, if any, and stops the
// committer. Rotations sent afterwards fail with errClosed. Closing the
// store twice is allowed, as it is for *sql.DB.
func (s *Store) stopRotator() {
	s.rot.stop.Do(func() { close(s.rot.quit) })
	<-s.rot.done
}

// RotateRefreshToken implements latchkey.Store. The conditional UPDATE is
// the compare-and-swap: rotations run one after another, in one process
// through the committer and across processes under SQLite's write lock, so
// the first to run changes the row and every later one finds current_hash
// no longer equal to OldHash.
func (s *Store) RotateRefreshToken(ctx context.Context, r latchkey.Rotation) error {
	req := &rotateReq{ctx: ctx, r: r, err: make(chan error, 1)}
	select {
	case s.rot.reqs <- req:
	case <-ctx.Done():
		return fmt.Errorf("rotate refresh token: %w", ctx.Err())
	case <-s.rot.quit:
		return fmt.Errorf("rotate refresh token: %w", errClosed)
	}
	// Once sent, wait for the outcome even if ctx ends: the rotation may be
	// committed already, and the caller must not be told otherwise.
	if err := <-req.err; err != nil {
		return fmt.Errorf("rotate refresh token: %w", err)
	}
	return nil
}

func (s *Store) commitRotations() {
	defer close(s.rot.done)
	batch := make([]*rotateReq, 0, maxBatch)
	for {
		select {
		case req := <-s.rot.reqs:
			batch = append(batch[:0], req)
		case <-s.rot.quit:
			return
		}
		// Let requests that are already being served reach the queue
		// before the batch closes. Without this, a server with one CPU
		// (GOMAXPROCS=1) keeps the committer running and commits one
		// rotation at a time, because the fsync occupies the CPU too.
		runtime.Gosched()
	drain:
		for len(batch) < maxBatch {
			select {
			case req := <-s.rot.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
		clear(batch) // drop references to finished requests
	}
}

// commitBatch runs the batch in one transaction and answers every request.
// The transaction does not use any caller's context: one caller going away
// must not abort the others' rotations.
func (s *Store) commitBatch(batch []*rotateReq) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	fail := func(err error) {
		for i := range errs {
			errs[i] = err
		}
	}
	defer func() {
		for i, req := range batch {
			req.err <- errs[i]
		}
	}()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	defer tx.Rollback()
	committed := false
	for i, req := range batch {
		if err := req.ctx.Err(); err != nil {
			errs[i] = err // the caller left before its turn: change nothing
			continue
		}
		var fatal error
		errs[i], fatal = s.rotateOne(ctx, tx, req.r)
		if fatal != nil {
			fail(fatal)
			return
		}
		committed = committed || errs[i] == nil
	}
	if !committed {
		return // nothing to write; the deferred Rollback ends the transaction
	}
	if err := tx.Commit(); err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
}

// rotateOne applies one rotation inside tx, or refuses it leaving nothing
// behind, so that the batch's other rotations stand either way. It does so
// without a savepoint per rotation, which cost two more statements each:
//
//   - The new token is recorded first. A constraint violation (the hash
//     already issued, or no such session) fails only that statement, which
//     SQLite undoes on its own, keeping the transaction.
//   - Then the compare-and-swap. If it changes no row (lost race, revoked
//     session), the token just recorded is deleted again.
//
// Any other failure may have ended the transaction, so it is fatal to the
// whole batch, which is then rolled back and every caller told.
func (s *Store) rotateOne(ctx context.Context, tx *sql.Tx, r latchkey.Rotation) (refused, fatal error) {
	_, err := s.txExec(ctx, tx, insertRefreshToken, r.NewHash, r.SessionID, timeArg(r.At))
	if err != nil {
		if isUnique(err) || isForeignKey(err) {
			return constraintErr(err), nil
		}
		return nil, err
	}
	n, err := affected(s.txExec(ctx, tx, rotateSession,
		timeArg(r.At), r.SealedSuccessor, r.NewHash, timeArg(r.At), timeArg(r.ExpiresAt),
		r.SessionID, r.OldHash))
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return nil, nil
	}
	if _, err := s.txExec(ctx, tx, deleteRefreshToken, r.NewHash); err != nil {
		return nil, err
	}
	// The session exists (the token's foreign key said so) but is revoked,
	// or its current token is no longer OldHash.
	return latchkey.ErrConflict, nil
}
