// Writes one dataset split as an HDF5 file in the layout of docs/data-format.md.
#pragma once

#include <optional>
#include <string>

#include "data/byte_dataset.h"
#include "data/channel_stats.h"

namespace slim::data {

// Samples per chunk of /inputs along N, so that random per-sample reads stay cheap.
constexpr int64_t kInputChunkSamples = 256;

// Writes `split` to `path`: /inputs (uint8, N×shape, chunked by kInputChunkSamples
// along N), /labels (int64, N) and the root attributes kind, class_names (variable-length
// UTF-8 strings), format_version (int32 1) and, for images, mean and std (float32, one per
// channel). Use the train split's statistics for every split of a set.
//
// The file is written to path + ".tmp", flushed to disk, then renamed to `path`, so a
// crash never leaves a partial file under the final name (a stale .tmp may remain; it is
// overwritten next time). An existing file at `path` is replaced.
//
// REQUIRES: `normalisation` is given, with one value per channel, exactly for images.
// Throws DataError for an inconsistent split or any failed HDF5 or file system call.
// Not thread-safe (the serial HDF5 library is not).
void WriteDatasetFile(const std::string& path, const ByteDataset& split,
                      const std::optional<ChannelStats>& normalisation);

}  // namespace slim::data
