#include "data/text_corpus.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/seeded_random.h"
#include "runtime/base/errors.h"

namespace slim::data {
namespace {

namespace fs = std::filesystem;

// One class: its name, where it came from and its whole text.
struct ClassText {
  std::string name;
  std::string path;
  std::string bytes;
};

// Appends the bytes of file `path` to `out`.
void AppendFile(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open text file '" + path.string() + "'; check its permissions");
  out.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) throw DataError("reading text file '" + path.string() + "' failed");
}

// The class name for `path`: its base name, also for "dir/", "." or "a/..".
std::string ClassName(const fs::path& path) {
  fs::path normal = fs::absolute(path).lexically_normal();
  if (normal.filename().empty()) normal = normal.parent_path();
  return normal.filename().string();
}

// The non-hidden regular files directly inside folder `path`, sorted by name.
std::vector<fs::path> FolderFiles(const fs::path& path) {
  std::error_code error;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(path, error), end; !error && it != end; it.increment(error)) {
    const bool hidden = it->path().filename().string().rfind('.', 0) == 0;
    if (!hidden && it->is_regular_file(error)) files.push_back(it->path());
  }
  if (error) {
    throw DataError("cannot list text folder '" + path.string() + "': " + error.message());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Reads one class from a file or a folder of files.
ClassText ReadClass(const std::string& path) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (!fs::exists(status)) {
    throw DataError("text path '" + path + "' does not exist; pass existing files or folders");
  }
  ClassText text{ClassName(path), path, {}};
  if (fs::is_regular_file(status)) {
    AppendFile(path, text.bytes);
  } else if (fs::is_directory(status)) {
    for (const fs::path& file : FolderFiles(path)) AppendFile(file, text.bytes);
  } else {
    throw DataError("text path '" + path + "' is neither a file nor a folder");
  }
  if (text.bytes.empty()) {
    throw DataError("text path '" + path + "' is empty (a folder needs non-hidden files); " +
                    "give each class some text");
  }
  return text;
}

void CheckOptions(const TextCorpusOptions& options) {
  if (options.seq_len <= 0) throw ConfigError("--seq-len must be positive");
  if (options.train_per_class <= 0) throw ConfigError("--train-per-class must be positive");
  if (options.eval_per_class <= 0) throw ConfigError("--eval-per-class must be positive");
  if (!(options.eval_fraction > 0 && options.eval_fraction < 1)) {
    throw ConfigError("eval_fraction must lie in (0, 1)");
  }
}

// An empty split of text windows of length seq_len over `names`.
ByteDataset EmptySplit(const std::vector<std::string>& names, int64_t seq_len) {
  ByteDataset split;
  split.kind = SampleKind::kText;
  split.sample_shape = {seq_len};
  split.class_names = names;
  return split;
}

// Appends `count` windows of class `label`, starting uniformly in [begin, end - seq_len].
void AppendWindows(const std::string& text, size_t begin, size_t end, int64_t label, int64_t count,
                   SeededRandom& rng, ByteDataset& split) {
  const auto seq_len = static_cast<size_t>(split.sample_shape[0]);
  const auto starts = static_cast<int64_t>(end - begin - seq_len + 1);
  for (int64_t k = 0; k < count; ++k) {
    const size_t start = begin + static_cast<size_t>(rng.UniformInt(starts));
    split.inputs.insert(split.inputs.end(), text.begin() + start, text.begin() + start + seq_len);
    split.labels.push_back(label);
  }
}

// Shuffles the samples of `split` (inputs and labels together).
void ShuffleSamples(ByteDataset& split, SeededRandom& rng) {
  std::vector<int64_t> order(split.labels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  rng.Shuffle(order);
  const int64_t bytes = split.sample_bytes();
  std::vector<uint8_t> inputs(split.inputs.size());
  std::vector<int64_t> labels(split.labels.size());
  for (size_t i = 0; i < order.size(); ++i) {
    std::copy_n(split.inputs.begin() + order[i] * bytes, bytes, inputs.begin() + i * bytes);
    labels[i] = split.labels[order[i]];
  }
  split.inputs = std::move(inputs);
  split.labels = std::move(labels);
}

}  // namespace

TextSplits BuildTextCorpus(const std::vector<std::string>& paths,
                           const TextCorpusOptions& options) {
  CheckOptions(options);
  if (paths.size() < 2) {
    throw DataError("a text set needs at least 2 classes (one file or folder each), got " +
                    std::to_string(paths.size()));
  }
  std::vector<ClassText> classes;
  std::vector<std::string> names;
  for (const std::string& path : paths) {
    classes.push_back(ReadClass(path));
    const ClassText& added = classes.back();
    for (size_t k = 0; k + 1 < classes.size(); ++k) {
      if (classes[k].name == added.name) {
        throw DataError("text paths '" + classes[k].path + "' and '" + path +
                        "' give the same class name '" + added.name + "'; rename one");
      }
    }
    names.push_back(added.name);
  }

  const auto seq_len = static_cast<size_t>(options.seq_len);
  TextSplits splits{EmptySplit(names, options.seq_len), EmptySplit(names, options.seq_len)};
  SeededRandom train_rng(DeriveSeed(options.seed, 0));
  SeededRandom eval_rng(DeriveSeed(options.seed, 1));
  for (size_t label = 0; label < classes.size(); ++label) {
    const ClassText& text = classes[label];
    const size_t size = text.bytes.size();
    const auto tail = static_cast<size_t>(std::ceil(options.eval_fraction * size));
    const size_t eval_bytes = std::max(tail, seq_len);
    if (size < eval_bytes + seq_len) {
      throw DataError("text of class '" + text.name + "' ('" + text.path + "') has " +
                      std::to_string(size) + " bytes, too few for one " + std::to_string(seq_len) +
                      "-byte train window plus " + std::to_string(eval_bytes) +
                      " eval bytes; give it more text or lower --seq-len");
    }
    const size_t eval_begin = size - eval_bytes;
    AppendWindows(text.bytes, 0, eval_begin, label, options.train_per_class, train_rng,
                  splits.train);
    AppendWindows(text.bytes, eval_begin, size, label, options.eval_per_class, eval_rng,
                  splits.eval);
  }
  ShuffleSamples(splits.train, train_rng);
  ShuffleSamples(splits.eval, eval_rng);
  return splits;
}

}  // namespace slim::data
