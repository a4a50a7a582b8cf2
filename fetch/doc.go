// Package fetch downloads, verifies and installs upgrade binaries named by a
// plan's `info`, accepting the same inputs as cosmovisor:
//
//   - info is JSON {"binaries": {"linux/amd64": URL, "any": URL, ...}}, or a
//     URL (or absolute path) of a document holding that JSON. Only the
//     host's entry (GOOS/GOARCH, else "any") is fetched.
//   - a URL names a bare binary, or an archive (zip, tar, tar.gz/tgz,
//     tar.bz2/tbz2, tar.xz/txz, tar.zst/tzst, gz, bz2, xz, zst; by suffix or
//     ?archive=TYPE) holding bin/$DAEMON_NAME, $DAEMON_NAME at its root, or a
//     single file of any name.
//   - ?checksum=TYPE:HEX (md5, sha1, sha256, sha512), bare HEX, or
//     file:URL-of-a-checksum-file is verified, on the downloaded file (the
//     archive for archives), before anything is installed.
//
// The binary lands at upgrades/<dir>/bin/$DAEMON_NAME, mode 0755, as if put
// there by hand. An archive is installed whole, as cosmovisor does: every
// member (bin/, lib/ with libwasmvm, READMEs) lands in upgrades/<dir>/ with
// its mode less group and other write; $DAEMON_NAME at the archive's top is
// moved to bin/; an archive of a single file installs only that file, as
// the binary. A folder wrapping everything is not looked into (cosmovisor
// does not either). Unlike cosmovisor it never refuses because
// upgrades/<dir> exists, and it never overwrites anything there: a binary
// already in place means nothing is downloaded, and other files are merged
// as install.go describes (a clash refuses the download, naming the paths).
// home.Layout.ChildEnv puts a version's lib/ on the node's LD_LIBRARY_PATH.
//
// # How a download is made safe
//
// Only the http, https and file getters of go-getter v2 are configured;
// go-getter's own archive handling is off (it would unpack into $TMPDIR and
// its single-file decompressors truncate silently at their size limit).
// Instead the file is downloaded into a staging folder,
// cosmovisor/.staging/<dir>/tmp-*, on the same filesystem as upgrades/; an
// archive's member list is checked (no symlinks, hard links, devices, no
// absolute or ".." names, at most MaxFiles members and MaxUnpacked bytes)
// before go-getter's decompressors unpack it with the same limits, and the
// unpacked tree is walked again before the binary is picked. The binary must
// be a regular file and an ELF program for this OS and architecture
// (home.CheckFormat). Every staged file and folder is fsynced, then moved
// into upgrades/<dir> with RENAME_NOREPLACE (a missing folder moves whole),
// the receiving folders are fsynced, and only then is bin/$DAEMON_NAME
// renamed in: the reactor, which takes the binary's presence as "ready",
// never sees it before its lib/. Across filesystems (upgrades/ a mount of
// its own) the staged tree is first copied to a .vigil-download-* folder on
// upgrades/' side. A failure before the renames leaves nothing under
// upgrades/; a failure between two renames (rare: an I/O error, a file
// placed by hand at that moment) leaves some files without the binary,
// which is harmless, and the next Fetch completes the install, as files
// with the archive's own bytes are not a clash. The staging folder is
// removed; staging left by a killed process is removed at the start of the
// next Fetch for the same upgrade.
//
// Every HTTP response body is watched: no progress for StallTimeout aborts
// the attempt, more than MaxDownload bytes (or a Content-Length above it)
// fails it for good. Connect, TLS handshake and response headers have their
// own timeouts. Progress (bytes, total, rate) is logged every ProgressEvery.
//
// Transient failures (connection errors, timeouts, stalls, HTTP 408, 425,
// 429 and 5xx) are retried with exponential backoff and jitter; a new attempt
// is not started after MaxTime, but an attempt that keeps making progress is
// never cut short. Permanent failures (checksum mismatch, other 4xx, bad
// archive layout, wrong architecture, limits, a full disk) end the Fetch at
// once; the reactor calls Fetch again later, so a fixed server or a binary
// put in by hand is picked up.
//
// # Concurrency
//
// A Fetcher is safe for concurrent use. Calls for the same upgrade directory
// are serialised, within the process by a mutex and across processes (vigil
// run and vigil prepare-upgrade) by an flock on cosmovisor/.staging/<dir>/lock;
// each call first checks whether the binary is already in place and then
// returns at once, so a prefetch and the halt never download twice. Fetch
// returns when its download has ended; it starts no goroutine that outlives
// it. Cancelling ctx aborts the download and cleans up.
package fetch
