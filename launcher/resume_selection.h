// Which checkpoint a job continues from (--resume auto|none|PATH) and whether it fits
// the model and config of this run.
#pragma once

#include <torch/script.h>

#include <optional>

#include "launcher/command_line.h"
#include "runtime/checkpoint/checkpoint_directory.h"
#include "runtime/config/options.h"

namespace slim::launcher {

// auto: the newest valid checkpoint of OUTPUT_DIR/checkpoints (nullopt when there is
// none); PATH: that file; none: nullopt. Throws DataError for an unreadable PATH, or when
// every checkpoint of the directory is damaged.
std::optional<checkpoint::LoadedCheckpoint> FindResumeCheckpoint(const CommandLine& command,
                                                                 const config::Config& config);

// Throws ModelError listing every difference (missing, extra or reshaped tensors, another
// optimizer, other strategies) when `loaded` cannot continue this run of `model`.
// `strategies` are the names of this run's strategies, sorted.
void CheckResumable(const checkpoint::LoadedCheckpoint& loaded, const torch::jit::Module& model,
                    const config::Config& config, const std::vector<std::string>& strategies);

}  // namespace slim::launcher
