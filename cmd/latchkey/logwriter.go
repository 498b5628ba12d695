package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Bounds of a logWriter's queue. Access-log lines are about 200 bytes, so
// a full queue holds about a megabyte: seconds of a busy server's log,
// enough to ride out a slow disk or a paused terminal, and no more memory
// than that however long the output stays blocked.
const (
	logQueueLines = 4096
	// logBufferBytes is how much the writer goroutine gathers before one
	// write to the output: a burst of lines costs one system call, not one
	// each.
	logBufferBytes = 64 << 10
)

// logWriter is the servers' log output. Write copies the line into a
// bounded queue and returns at once; one goroutine writes the queue to
// the output through a buffer, at once when the server is idle and in
// batches every logFlushInterval while it is busy (see drain). A slow disk, a blocked pipe or a terminal paused with ^S then
// delays log lines, never a request: when the queue is full a line is
// dropped and counted, and the count is written, as a warning line of
// its own, before the next line that gets through. Close writes what is
// queued and flushes; after it, writes go straight to the output, so the
// lines of a shutdown are not lost.
//
// slog handlers make one Write per record, so lines stay whole, in the
// order they were written.
type logWriter struct {
	out     io.Writer
	queue   chan *[]byte
	dropped atomic.Int64
	done    chan struct{}
	// free recycles line buffers, so a line costs no allocation.
	free sync.Pool

	// mu orders Write against Close: Write holds it shared, Close
	// exclusively, so no Write sends on the closed queue.
	mu     sync.RWMutex
	closed bool
	// direct serialises the writes made after Close.
	direct sync.Mutex
}

func newLogWriter(out io.Writer) *logWriter {
	w := &logWriter{out: out, queue: make(chan *[]byte, logQueueLines), done: make(chan struct{})}
	w.free.New = func() any { b := make([]byte, 0, 256); return &b }
	go w.drain()
	return w
}

// Write queues a copy of p. It never blocks on the output and never fails:
// a line that does not fit is counted as dropped.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.direct.Lock()
		defer w.direct.Unlock()
		return w.out.Write(p)
	}
	bp := w.free.Get().(*[]byte)
	*bp = append((*bp)[:0], p...)
	select {
	case w.queue <- bp:
	default:
		w.dropped.Add(1)
		w.free.Put(bp)
	}
	w.mu.RUnlock()
	return len(p), nil
}

// drain writes queued lines until the queue is closed. Output errors are
// not reported: there is nowhere left to report them.
//
// A line that comes to an idle writer is written at once. While lines
// keep coming, drain takes them in batches, one write per
// logFlushInterval: it sleeps instead of waiting on the queue, so a
// request's Write is a send to a buffered channel that wakes nobody. On
// one busy core, waking this goroutine for every line made one write(2)
// per request, about a tenth of GET /books (docs/benchmarks.md).
func (w *logWriter) drain() {
	defer close(w.done)
	buf := bufio.NewWriterSize(w.out, logBufferBytes)
	for line := range w.queue {
		w.put(buf, line)
		for {
			open := w.gather(buf)
			buf.Flush()
			if !open {
				return
			}
			time.Sleep(logFlushInterval)
			if len(w.queue) == 0 {
				break // idle again: wait on the queue
			}
		}
	}
	w.warnDropped(buf)
	buf.Flush()
}

// logFlushInterval is how long a busy server's log lines may wait to be
// written: long enough to batch thousands of lines, short enough for a
// person watching the log not to notice.
const logFlushInterval = 10 * time.Millisecond

// gather takes every line queued now into buf, and reports false once
// the queue is closed and empty.
func (w *logWriter) gather(buf *bufio.Writer) bool {
	for {
		select {
		case line, ok := <-w.queue:
			if !ok {
				w.warnDropped(buf)
				return false
			}
			w.put(buf, line)
		default:
			return true
		}
	}
}

func (w *logWriter) put(buf *bufio.Writer, line *[]byte) {
	w.warnDropped(buf)
	buf.Write(*line)
	w.recycle(line)
}

func (w *logWriter) recycle(line *[]byte) {
	if cap(*line) <= 4096 { // a huge line's buffer is not kept
		w.free.Put(line)
	}
}

// warnDropped writes, in the text handler's format, how many lines were
// dropped since it last did.
func (w *logWriter) warnDropped(out io.Writer) {
	if n := w.dropped.Swap(0); n > 0 {
		fmt.Fprintf(out, "time=%s level=WARN msg=\"log lines dropped: the log output is slower than the server\" count=%d\n",
			time.Now().Format(time.RFC3339Nano), n)
	}
}

// Dropped is how many lines were dropped and not yet reported.
func (w *logWriter) Dropped() int64 { return w.dropped.Load() }

// Close writes every queued line and flushes the output; later writes go
// to the output directly. It is safe to call more than once.
func (w *logWriter) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

// newServerLogger is the log of a server command: lines go through a
// logWriter to w, and closeLog, deferred first so that it runs last,
// writes what is still queued. go-redis's own log (a line per failed dial
// while Redis is away, which the limiter already reports once) goes to it
// at debug level instead of the standard library's logger on stderr. That
// setting is process-wide, which is why the binary makes it and not
// package redis.
func newServerLogger(w io.Writer, level string) (logger *slog.Logger, closeLog func()) {
	out := newLogWriter(w)
	logger = newLogger(out, level)
	goredis.SetLogger(redisLog{logger.With("component", "go-redis")})
	return logger, out.Close
}

// redisLog adapts slog to go-redis's logger interface.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	if r.l.Enabled(ctx, slog.LevelDebug) {
		r.l.DebugContext(ctx, fmt.Sprintf(format, v...))
	}
}
