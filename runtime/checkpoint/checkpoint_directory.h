// The checkpoints of one run: OUTPUT_DIR/checkpoints/ckpt-<step>.h5, newest = highest step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/checkpoint/checkpoint_state.h"

namespace slim::checkpoint {

// OUTPUT_DIR/checkpoints.
std::string CheckpointDirectory(const std::string& output_dir);

// DIRECTORY/ckpt-<step>.h5.
std::string CheckpointPath(const std::string& directory, int64_t step);

// The checkpoint files of `directory` (ckpt-<step>.h5; temporaries excluded), newest
// first. Empty when the directory does not exist.
std::vector<std::string> ListCheckpoints(const std::string& directory);

// A checkpoint read and verified in full.
struct LoadedCheckpoint {
  std::string path;
  CheckpointState state;
  // Newer files that were skipped because they could not be read, with the reason.
  std::vector<std::string> skipped;
};

// The newest checkpoint of `directory` that reads and verifies in full; nullopt when the
// directory holds none. Throws DataError listing every file and its problem when there
// are checkpoints but none is valid.
std::optional<LoadedCheckpoint> LoadNewestValid(const std::string& directory);

// Deletes all but the `keep` newest checkpoints, and leftover temporaries of writes that
// were interrupted. Never deletes `newest` (the file just written). Returns the paths
// deleted.
std::vector<std::string> PruneCheckpoints(const std::string& directory, int64_t keep,
                                          const std::string& newest);

// Renames an existing checkpoint directory to DIRECTORY.replaced-<unix time> so a fresh
// start (--resume none) neither resumes from nor deletes the old run's checkpoints.
// Returns the new name, or "" when there was nothing to move.
std::string MoveAsideCheckpoints(const std::string& directory);

// Moves the checkpoints of steps after `step` (left by another run: a fresh start, a
// --resume-weights-only run or a resume from an older file) into
// DIRECTORY.replaced-<unix time>, so that neither keep-last-K pruning, which goes by step,
// deletes this run's files in their favour nor --resume auto resumes the other run.
// Returns the folder they went to, or "" when there were none.
std::string MoveAsideLaterCheckpoints(const std::string& directory, int64_t step);

}  // namespace slim::checkpoint
