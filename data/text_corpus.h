// A byte-level text classification set built from text files: one class per file or per
// folder, samples are fixed-length byte windows, and train and eval windows come from
// disjoint parts of each class's text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/byte_dataset.h"

namespace slim::data {

// How windows are cut from the class texts.
struct TextCorpusOptions {
  // Window length L in bytes (the sample shape is {L}). Default 128.
  int64_t seq_len = 128;
  // Windows per class in the train split. Default 2000.
  int64_t train_per_class = 2000;
  // Windows per class in the eval split. Default 200.
  int64_t eval_per_class = 200;
  // Seed for window offsets and sample order; train and eval use streams derived from it.
  uint64_t seed = 1;
  // Share of each class's text reserved for eval (its tail); at least seq_len bytes are
  // reserved whatever the share. Default 0.1.
  double eval_fraction = 0.1;
};

// The two splits of a text set; both carry the same class names.
struct TextSplits {
  ByteDataset train;
  ByteDataset eval;
};

// Builds the set from `paths`, one class per path, in the order given. A file is one
// class's text; a folder's regular files (not recursive, hidden ones skipped) are
// concatenated in name order. The class name is the path's base name.
//
// Each class text is split into a head (train) and a tail of
// max(ceil(eval_fraction × size), seq_len) bytes (eval); windows start at uniformly
// random offsets inside their part, so no window of one split shares a byte with a
// window of the other. Each split is balanced (exactly *_per_class windows per class)
// and shuffled. The result depends only on the file contents, their order and `options`.
//
// Throws DataError naming the path for: a path that does not exist or is neither file nor
// folder, an empty file or folder, two paths with the same base name, fewer than 2
// classes, and a class text too short for a train window plus its eval tail (with
// eval_fraction <= 0.5: shorter than 2 × seq_len). Throws ConfigError for non-positive
// seq_len or per-class counts, or an eval_fraction outside (0, 1).
TextSplits BuildTextCorpus(const std::vector<std::string>& paths, const TextCorpusOptions& options);

}  // namespace slim::data
