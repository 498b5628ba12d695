package books

import "context"

// ExecSQLiteForTest runs q on s's database, as another tool on the same
// file would.
func ExecSQLiteForTest(ctx context.Context, s *SQLiteStore, q string) error {
	_, err := s.db.ExecContext(ctx, q)
	return err
}
