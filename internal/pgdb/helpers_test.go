package pgdb

import (
	"testing"
	"testing/fstest"
)

// schema is a two-step schema: the second migration needs the first.
var schema = fstest.MapFS{
	"0001_items.sql": {Data: []byte(`CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);`)},
	"0002_tags.sql": {Data: []byte(`CREATE TABLE tags (item bigint NOT NULL REFERENCES items (id), tag text NOT NULL);
		CREATE INDEX tags_item ON tags (item);`)},
}

// with returns schema plus the given files.
func with(files fstest.MapFS) fstest.MapFS {
	all := fstest.MapFS{}
	for k, v := range schema {
		all[k] = v
	}
	for k, v := range files {
		all[k] = v
	}
	return all
}

// mustOpen opens cfg, with schema's migrations unless it names others,
// and closes the pool when the test ends.
func mustOpen(tb testing.TB, cfg Config) *DB {
	tb.Helper()
	if cfg.Migrations == nil {
		cfg.Migrations = schema
	}
	db, err := Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}
