package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

// CreateUser implements latchkey.Store. A duplicate id or a username
// taken in any ASCII case violates a unique index: ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *latchkey.User) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO users (id, username, role, password_hash, disabled, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Username, string(u.Role), u.PasswordHash, u.Disabled, timeArg(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user: %w", constraintErr(err))
	}
	return nil
}

// userColumns are read from the users table under the alias u, so that
// joins can use them as they are.
const userColumns = `u.id, u.username, u.role, u.password_hash, u.disabled, u.created_at, u.generation`

// userDest is where a row of userColumns goes; the role is converted after
// the scan.
func userDest(u *latchkey.User, role *string) []any {
	return []any{&u.ID, &u.Username, role, &u.PasswordHash, &u.Disabled, timeCol{&u.CreatedAt}, &u.Generation}
}

func scanUser(row pgx.Row) (*latchkey.User, error) {
	var u latchkey.User
	var role string
	if err := row.Scan(userDest(&u, &role)...); err != nil {
		return nil, err
	}
	u.Role = latchkey.Role(role)
	return &u, nil
}

// UserByID implements latchkey.Store.
func (s *Store) UserByID(ctx context.Context, id string) (*latchkey.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user by id: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("user by id: %w", err)
	}
	return u, nil
}

// userByUsername folds the argument under the "C" collation, as the index
// on lower(username) is, so that only ASCII letters fold and the index is
// used.
const userByUsername = `SELECT ` + userColumns + ` FROM users u
	WHERE lower(u.username) = lower($1::text COLLATE "C")`

// UserByUsername implements latchkey.Store.
func (s *Store) UserByUsername(ctx context.Context, name string) (*latchkey.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, userByUsername, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user by username: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("user by username: %w", err)
	}
	return u, nil
}

// UpdateUser implements latchkey.Store. PostgreSQL counts the rows the
// WHERE matched, changed or not, so writing the same values is not "not
// found".
func (s *Store) UpdateUser(ctx context.Context, u *latchkey.User) error {
	if err := oneRow(s.pool.Exec(ctx, `UPDATE users SET role = $2, disabled = $3 WHERE id = $1`, u.ID, string(u.Role), u.Disabled)); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	return nil
}

// ListUsers implements latchkey.Store. Ids use the "C" collation, so they
// compare bytewise, as Go strings do.
func (s *Store) ListUsers(ctx context.Context, afterID string, limit int) ([]*latchkey.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id > $1 ORDER BY u.id LIMIT $2`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*latchkey.User, error) {
		return scanUser(row)
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetPassword implements latchkey.Store in one transaction.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, end *latchkey.EndSessions) (int, error) {
	var revoked int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := oneRow(tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)); err != nil {
			return err
		}
		if end == nil {
			return nil
		}
		tag, err := tx.Exec(ctx, revokeUserSessions, userID, timeArg(end.At), end.Reason, end.Except)
		if err != nil {
			return err
		}
		revoked = int(tag.RowsAffected())
		_, err = tx.Exec(ctx, `DELETE FROM mfa_challenges WHERE user_id = $1`, userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("set password: %w", err)
	}
	return revoked, nil
}
