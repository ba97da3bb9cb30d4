// Whole-file outputs written so that a reader never sees a partial file: the content goes
// to PATH.partial, is flushed to disk (fsync) and renamed over PATH. Failures (disk full,
// permissions) throw OutputError naming the file, and leave no PATH.partial behind.
#pragma once

#include <string>

namespace slim::files {

// Writes `text` to `path` atomically.
void WriteAtomically(const std::string& path, const std::string& text);

// The temporary name a writer fills before Commit(path).
std::string PartialPath(const std::string& path);

// Flushes PartialPath(path), which a writer filled, to disk and renames it to `path`.
void Commit(const std::string& path);

// Removes PartialPath(path) after a failed write; never throws.
void Discard(const std::string& path);

}  // namespace slim::files
