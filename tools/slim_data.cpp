// slim-data: writes SlimTrain datasets (docs/data-format.md) as DIR/train.h5 and
// DIR/eval.h5, either procedural images or byte windows of text files.
// Exit codes: 0 success, 2 bad usage, 3 data error (see runtime/base/errors.h).

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "data/byte_dataset.h"
#include "data/channel_stats.h"
#include "data/fashion_mnist.h"
#include "data/hdf5_dataset_writer.h"
#include "data/seeded_random.h"
#include "data/synthetic_images.h"
#include "data/text_corpus.h"
#include "runtime/base/errors.h"
#include "tools/parse_or_exit.h"

namespace slim::data {
namespace {

// The largest count a user may ask for (images, windows, window length).
constexpr int64_t kMaxCount = INT32_MAX;
// The largest seed. CLI11 2.1.2 wraps negative numbers and saturates too large ones to
// UINT64_MAX, so the bound is what rejects both.
constexpr uint64_t kMaxSeed = INT64_MAX;

// `slim-data images`: what to generate.
struct ImagesRequest {
  std::string out;
  int64_t train = 10000;
  int64_t eval = 2000;
  uint64_t seed = 1;
};

// `slim-data text`: the class texts and how to cut them.
struct TextRequest {
  std::string out;
  std::vector<std::string> paths;
  TextCorpusOptions options;
};

// `slim-data fashion-mnist`: where the IDX files are.
struct FashionMnistRequest {
  std::string out;
  std::string source = kFashionMnistDir;
};

// Declares the options every command has: --out DIR (required) and --seed S.
void AddOutAndSeed(CLI::App* command, std::string& out, uint64_t& seed) {
  command->add_option("--out", out, "write DIR/train.h5 and DIR/eval.h5, creating DIR")
      ->required()
      ->type_name("DIR");
  command->add_option("--seed", seed, "seed; the same seed gives the same files")
      ->type_name("S")
      ->check(CLI::Range(uint64_t{0}, kMaxSeed))
      ->capture_default_str();
}

// Declares a count option: a whole number N in [1, kMaxCount], default shown in --help.
void AddCount(CLI::App* command, const std::string& name, int64_t& count,
              const std::string& description) {
  command->add_option(name, count, description)
      ->type_name("N")
      ->check(CLI::Range(int64_t{1}, kMaxCount))
      ->capture_default_str();
}

// Declares `slim-data images` on `app`, bound to `request`.
CLI::App* AddImagesCommand(CLI::App& app, ImagesRequest& request) {
  CLI::App* command =
      app.add_subcommand("images", "procedural 10-class 32x32 RGB images (uint8 CHW)");
  AddOutAndSeed(command, request.out, request.seed);
  AddCount(command, "--train", request.train, "train images");
  AddCount(command, "--eval", request.eval, "eval images, drawn from a seed derived from --seed");
  return command;
}

// Declares `slim-data fashion-mnist` on `app`, bound to `request`.
CLI::App* AddFashionMnistCommand(CLI::App& app, FashionMnistRequest& request) {
  CLI::App* command = app.add_subcommand(
      "fashion-mnist", "Fashion-MNIST's 60,000 train and 10,000 test images (uint8 1x28x28)");
  command->add_option("--out", request.out, "write DIR/train.h5 and DIR/eval.h5, creating DIR")
      ->required()
      ->type_name("DIR");
  command->add_option("--source", request.source,
                      "folder of the IDX files (Debian package dataset-fashion-mnist)")
      ->type_name("DIR")
      ->capture_default_str();
  return command;
}

// Declares `slim-data text` on `app`, bound to `request`.
CLI::App* AddTextCommand(CLI::App& app, TextRequest& request) {
  CLI::App* command =
      app.add_subcommand("text", "byte windows of text files, one class per PATH (uint8 L)");
  command
      ->add_option("PATH", request.paths,
                   "at least 2: a file, or a folder whose files are concatenated; the\n"
                   "class is named after its base name. Train windows come from the\n"
                   "first 90% of each text, eval windows from the rest.")
      ->type_name("")
      ->required()
      ->expected(2, CLI::detail::expected_max_vector_size);
  AddOutAndSeed(command, request.out, request.options.seed);
  AddCount(command, "--seq-len", request.options.seq_len, "window length L in bytes");
  AddCount(command, "--train-per-class", request.options.train_per_class,
           "train windows per class");
  AddCount(command, "--eval-per-class", request.options.eval_per_class, "eval windows per class");
  return command;
}

// The folder `out`, created if missing. Throws DataError if it cannot be created.
std::filesystem::path OutputFolder(const std::string& out) {
  std::error_code error;
  std::filesystem::create_directories(out, error);
  if (error) throw DataError("cannot create output folder '" + out + "': " + error.message());
  return out;
}

// Writes `split` to folder/name and prints its one-line summary.
void WriteAndReport(const std::filesystem::path& folder, const std::string& name,
                    const ByteDataset& split, const std::optional<ChannelStats>& stats) {
  const std::string path = (folder / name).string();
  WriteDatasetFile(path, split, stats);
  std::ostringstream shape;
  shape << split.size();
  for (int64_t dim : split.sample_shape) shape << "x" << dim;
  std::ostringstream classes;
  for (size_t k = 0; k < split.class_names.size(); ++k) {
    classes << (k ? "," : "") << split.class_names[k];
  }
  std::cout << "wrote " << path << ": kind=" << SampleKindName(split.kind) << " N=" << split.size()
            << " inputs=uint8[" << shape.str() << "] classes=" << split.class_names.size() << " ("
            << classes.str() << ")\n";
}

// Seconds since `start`.
double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Generates both image splits and writes them with the train split's statistics.
void RunImages(const ImagesRequest& request) {
  const std::filesystem::path folder = OutputFolder(request.out);
  const auto start = std::chrono::steady_clock::now();
  const ByteDataset train = GenerateImages(request.train, DeriveSeed(request.seed, 0));
  const ByteDataset eval = GenerateImages(request.eval, DeriveSeed(request.seed, 1));
  const double seconds = SecondsSince(start);
  const int64_t count = request.train + request.eval;
  std::cout << "generated " << count << " images in " << seconds << " s ("
            << static_cast<int64_t>(count / seconds) << " images/s)\n";
  // Both splits are normalised with the train statistics.
  const ChannelStats stats = ComputeChannelStats(train);
  WriteAndReport(folder, "train.h5", train, stats);
  WriteAndReport(folder, "eval.h5", eval, stats);
}

// Cuts both text splits and writes them.
void RunText(const TextRequest& request) {
  const std::filesystem::path folder = OutputFolder(request.out);
  const TextSplits splits = BuildTextCorpus(request.paths, request.options);
  WriteAndReport(folder, "train.h5", splits.train, std::nullopt);
  WriteAndReport(folder, "eval.h5", splits.eval, std::nullopt);
}

// Converts Fashion-MNIST; the test set becomes eval.h5.
void RunFashionMnist(const FashionMnistRequest& request) {
  const std::filesystem::path folder = OutputFolder(request.out);
  const FashionMnist splits = ReadFashionMnist(request.source);
  const ChannelStats stats = ComputeChannelStats(splits.train);
  WriteAndReport(folder, "train.h5", splits.train, stats);
  WriteAndReport(folder, "eval.h5", splits.test, stats);
}

int Run(int argc, char** argv) {
  CLI::App app("Writes a SlimTrain dataset (docs/data-format.md) as DIR/train.h5 and DIR/eval.h5.",
               "slim-data");
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "show the options of every command and exit");
  app.footer(
      "slim-data COMMAND --help shows the options of COMMAND.\n"
      "exit codes: 0 ok, 2 bad usage, 3 data error");
  ImagesRequest images_request;
  TextRequest text_request;
  FashionMnistRequest fashion_request;
  const CLI::App* images = AddImagesCommand(app, images_request);
  const CLI::App* text = AddTextCommand(app, text_request);
  AddFashionMnistCommand(app, fashion_request);
  if (const auto code = slim::tools::ParseOrExit(app, argc, argv)) return *code;
  try {
    if (*images) {
      RunImages(images_request);
    } else if (*text) {
      RunText(text_request);
    } else {
      RunFashionMnist(fashion_request);
    }
    return static_cast<int>(ExitCode::kSuccess);
  } catch (const SlimError& error) {
    std::cerr << "slim-data: " << error.what() << "\n";
    return static_cast<int>(error.exit_code());
  }
}

}  // namespace
}  // namespace slim::data

int main(int argc, char** argv) { return slim::data::Run(argc, argv); }
