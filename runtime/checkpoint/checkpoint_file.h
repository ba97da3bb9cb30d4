// One checkpoint as one self-describing HDF5 file (layout: docs/checkpoints.md).
#pragma once

#include <functional>
#include <string>

#include "runtime/checkpoint/checkpoint_state.h"

namespace slim::checkpoint {

// Writes `state` to `path` crash-safely (PATH.tmp, fsync, rename): `path` is either absent
// or complete. Every dataset carries a checksum of its bytes (attribute fletcher64) and the
// file uses HDF5's checksummed metadata. The file is assembled in memory first, so rank 0
// holds a second copy of the checkpoint while it is written; in exchange a full disk is an
// ordinary write error. `halfway`, when set, runs once half of the bytes are on disk (the
// hook fault injection uses to die mid-write). Returns the bytes written. Throws
// DataError for a state HDF5 cannot hold, OutputError when the file cannot be written.
int64_t WriteCheckpointFile(const std::string& path, const CheckpointState& state,
                            const std::function<void()>& halfway = nullptr);

// Reads and verifies the whole checkpoint at `path`: every dataset's checksum, the
// format version and the presence of every group. Throws DataError("checkpoint PATH
// ...: what is wrong") for a missing, truncated, damaged or foreign file.
CheckpointState ReadCheckpointFile(const std::string& path);

}  // namespace slim::checkpoint
