// Whole-file outputs written so that a reader never sees a partial file: the bytes go to
// PATH.tmp, are flushed to disk (fsync), renamed over PATH, and the directory is flushed.
// Failures (disk full, permissions) throw OutputError naming the file and leave no
// PATH.tmp behind; a process killed while writing can leave one, which checkpoint pruning
// and the next write of the same file remove.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace slim::files {

// Writes `bytes` to `path` atomically. `halfway`, when given, runs after the first half of
// the bytes is written (fault injection in tests).
void WriteAtomically(const std::string& path, std::string_view bytes,
                     const std::function<void()>& halfway = {});

}  // namespace slim::files
