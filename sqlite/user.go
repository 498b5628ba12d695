package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchkey-dev/latchkey"
)

// CreateUser implements latchkey.Store.
func (s *Store) CreateUser(ctx context.Context, u *latchkey.User) error {
	_, err := s.exec(ctx, `
		INSERT INTO users (id, username, role, password_hash, disabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, string(u.Role), u.PasswordHash, u.Disabled, timeArg(u.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("create user: %w: %w", latchkey.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
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

func scanUser(row interface{ Scan(...any) error }) (*latchkey.User, error) {
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
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user by id: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("user by id: %w", err)
	}
	return u, nil
}

// UserByUsername implements latchkey.Store. lower() folds ASCII only,
// as the generated username_key column does.
func (s *Store) UserByUsername(ctx context.Context, name string) (*latchkey.User, error) {
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.username_key = lower(?)`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user by username: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("user by username: %w", err)
	}
	return u, nil
}

// UpdateUser implements latchkey.Store.
func (s *Store) UpdateUser(ctx context.Context, u *latchkey.User) error {
	// SQLite counts rows the WHERE matched, changed or not.
	if err := oneRow(s.exec(ctx, `UPDATE users SET role = ?, disabled = ? WHERE id = ?`, string(u.Role), u.Disabled, u.ID)); err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	return nil
}

// ListUsers implements latchkey.Store. A limit of 0 or less returns no
// users. Ids compare bytewise (SQLite's BINARY collation), as Go strings do.
func (s *Store) ListUsers(ctx context.Context, afterID string, limit int) ([]*latchkey.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.query(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id > ? ORDER BY u.id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []*latchkey.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// SetPassword implements latchkey.Store in one write transaction.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, end *latchkey.EndSessions) (int, error) {
	var revoked int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := oneRow(tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)); err != nil {
			return err
		}
		if end == nil {
			return nil
		}
		var err error
		if revoked, err = affected(tx.ExecContext(ctx, revokeUserSessions, timeArg(end.At), end.Reason, userID, end.Except)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM mfa_challenges WHERE user_id = ?`, userID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("set password: %w", err)
	}
	return revoked, nil
}
