// Package backup snapshots the node's data directory before an upgrade,
// keeps the last few snapshots, and restores one.
//
// # Strategies
//
// Take picks the cheapest way to make an independent copy that the
// destination allows (Auto), or the one asked for, falling back to Copy
// whenever the faster one is impossible (and logging it):
//
//   - Reflink: a copy-on-write clone of every file (ioctl FICLONE) on
//     filesystems that share extents (btrfs, XFS with reflink=1). Seconds
//     for any size, no extra space until either side is written to.
//   - Hardlink: the files LSM stores never modify once written (LevelDB
//     *.ldb, RocksDB/pebble *.sst) are hard-linked; everything else (WAL
//     *.log, MANIFEST-*, CURRENT, LOCK, OPTIONS, priv_validator_state.json,
//     cs.wal/*, anything unknown) is really copied. This is how RocksDB
//     checkpoints work. It needs the destination on the same filesystem as
//     data/; a file that cannot be linked (another mount, EXDEV) is copied.
//     RISK: a linked file is the same inode in both places. The stores
//     above only ever create and delete such files, but if anything ever
//     modified one in place (a repair tool, an editor, a bug), the backup
//     would change with it. An operator who cannot accept that sets the
//     strategy to Copy (VIGIL_BACKUP_MODE=copy).
//   - Copy: a parallel copy (4 workers) done by the kernel with
//     copy_file_range, keeping holes (SEEK_DATA/SEEK_HOLE), modes, owners
//     (when root), access and modification times, directory times (set
//     after their contents) and symlinks as symlinks. Sockets, FIFOs and
//     devices are skipped with a warning.
//
// Auto tries Reflink (FICLONE of the first regular file into the
// destination), then Hardlink when source and destination share a device,
// then Copy.
//
// A data directory that is a symlink (data/ on its own volume) is resolved
// once, by ResolveData: every strategy, the estimate and Restore work on
// the directory it points to, and its filesystem decides the strategy. A
// dangling link is an error (*DanglingError), never an empty backup.
//
// # Safety
//
// A backup must be taken only after the node has exited: a copy of a live
// LevelDB can miss files a compaction is writing. It is written to
// "<name>.partial" (flocked while written, so another vigil sharing the
// directory never removes it), flushed with syncfs, renamed to its name and
// the parent directory fsynced, so a crash never leaves something that
// looks finished. Any failure, ENOSPC included, removes the partial output.
// Each backup holds a manifest (ManifestFile) recording the upgrade, height,
// time, strategy, size, the `current` target it was taken under and the
// source directory; List, Retain and Restore only ever consider folders
// named like a backup that hold one, and never touch anything else.
//
// Estimate tells, before the node is stopped, how much space the chosen
// strategy needs (plus a margin of 5% of the filesystem, at most 256 MiB,
// left for the node) and how much is free.
//
// Restore copies a backup (with the same strategies) into a fresh
// directory beside data/ and swaps it in with two renames, moving the old
// data/ aside to "data.replaced-<UTC time>": a failure at any point leaves
// the old data in place. A data/ symlink is kept: the swap happens beside
// its target, on the data volume. It keeps the live priv_validator_state.json when
// that one is ahead (height, round, step), so a validator cannot sign twice.
//
// # A home's backups
//
// Policy is the backup an upgrade takes (the reactor's Backuper): the room
// check while the node still runs, one backup per halt (a resumed upgrade
// reuses the backup of its halt while data/ still matches it), a name that
// never collides, retention after the switch. RestoreHome is `vigil backup
// restore`: it holds the run lock, refuses while a database LOCK is held,
// restores, and points `current` back at the version that wrote the data.
//
// # Concurrency
//
// Every function is safe to call from any goroutine and returns only when
// the goroutines it started (copy workers, the progress logger) have ended.
// Two Takes into the same name are not coordinated beyond the partial's
// lock: the caller (one vigil per home) runs one at a time.
package backup
