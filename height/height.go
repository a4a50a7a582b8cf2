// Package height reads the block height a stopped Cosmos SDK node has committed, so vigil can
// tell whether a node started with --halt-height=H got to H before it switches binaries.
//
// The source is the app's own database, data/application.db, key "s/latest" (store/rootmulti's
// latestVersionKey), a gogoproto Int64Value. CometBFT's block store is not used: it saves block
// H before the app commits it, so it runs ahead of the app after a crash.
//
// The database is opened read-only: it takes a shared flock on LOCK (so a running node, which
// holds it exclusively, makes the read fail with ErrInUse), writes no LOG, replays the journal in
// memory and never compacts. The one file it can create is an empty LOCK, and only in a database
// that lacks one, which no LevelDB that has ever been opened does.
//
// Only goleveldb, the SDK's default backend, is read. vigil refuses to guess for pebble or
// rocksdb (app-db-backend / db_backend set to something else): a wrong height would switch
// binaries at the wrong block.
package height

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrInUse: the database is held by a running process (its LOCK is taken); read it once the
// node has stopped.
var ErrInUse = errors.New("application database is in use by a running process (its LOCK is held); read it once the node has stopped")

// latestVersionKey is store/rootmulti's key for the last committed version.
const latestVersionKey = "s/latest"

// dbName is the app database under the node's data directory.
const dbName = "application.db"

// Committed returns the last height the app committed, read from dataDir/application.db with
// the node stopped. 0 and nil when there is no application.db yet (a fresh node).
func Committed(dataDir string) (int64, error) {
	path := filepath.Join(dataDir, dbName)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("reading committed height: %w", err)
	case !fi.IsDir():
		return 0, fmt.Errorf("reading committed height: %s is not a directory", path)
	}
	if err := checkGoleveldb(path); err != nil {
		return 0, err
	}

	db, err := leveldb.OpenFile(path, &opt.Options{
		ReadOnly:       true,
		ErrorIfMissing: true,
		// Only one key is read: no block cache, and few descriptors held open.
		BlockCacheCapacity:     -1,
		OpenFilesCacheCapacity: 8,
	})
	if err != nil {
		// goleveldb returns flock's error as is; EWOULDBLOCK is EAGAIN on Linux, but not on
		// every platform, hence both.
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
			return 0, fmt.Errorf("reading committed height from %s: %w", path, ErrInUse)
		}
		return 0, fmt.Errorf("reading committed height: %s cannot be opened as goleveldb (vigil reads only goleveldb; app-db-backend/db_backend other than goleveldb is not supported for scheduled upgrades): %w", path, err)
	}
	v, err := db.Get([]byte(latestVersionKey), nil)
	cerr := db.Close()
	switch {
	case errors.Is(err, leveldb.ErrNotFound):
		// The SDK reads an absent key as version 0: nothing committed yet.
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("reading %q from %s: %w", latestVersionKey, path, err)
	case cerr != nil:
		return 0, fmt.Errorf("closing %s: %w", path, cerr)
	}
	h, err := parseInt64Value(v)
	if err != nil {
		return 0, fmt.Errorf("reading committed height: %q in %s: %w", latestVersionKey, path, err)
	}
	return h, nil
}

// checkGoleveldb refuses what goleveldb would misread or, worse, write to before failing: a
// pebble or rocksdb directory (OPTIONS-*), or one without CURRENT (goleveldb creates LOCK before
// it looks for CURRENT, even read-only).
func checkGoleveldb(path string) error {
	notSupported := func(why string) error {
		return fmt.Errorf("reading committed height: %s %s; vigil reads only goleveldb (app-db-backend/db_backend other than goleveldb is not supported for scheduled upgrades)", path, why)
	}
	opts, err := filepath.Glob(filepath.Join(path, "OPTIONS-*"))
	if err != nil {
		return fmt.Errorf("reading committed height: %w", err)
	}
	if len(opts) > 0 {
		return notSupported("has " + filepath.Base(opts[0]) + ", so it is pebble or rocksdb, not goleveldb")
	}
	switch _, err := os.Stat(filepath.Join(path, "CURRENT")); {
	case errors.Is(err, os.ErrNotExist):
		return notSupported("has no CURRENT file, so it is not a goleveldb database")
	case err != nil:
		return fmt.Errorf("reading committed height: %w", err)
	}
	return nil
}

// parseInt64Value decodes gogoproto's Int64Value (field 1, varint) as gogotypes.StdInt64Unmarshal
// does: empty means 0, and a repeated field takes its last value. Anything else is refused
// rather than guessed at.
func parseInt64Value(b []byte) (int64, error) {
	var h int64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, fmt.Errorf("not an Int64Value (%x): %w", b, protowire.ParseError(n))
		}
		if num != 1 || typ != protowire.VarintType {
			return 0, fmt.Errorf("not an Int64Value: field %d of wire type %d", num, typ)
		}
		b = b[n:]
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, fmt.Errorf("not an Int64Value: field 1: %w", protowire.ParseError(n))
		}
		b = b[n:]
		h = int64(v)
	}
	if h < 0 {
		return 0, fmt.Errorf("negative height %d", h)
	}
	return h, nil
}
