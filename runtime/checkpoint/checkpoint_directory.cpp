#include "runtime/checkpoint/checkpoint_directory.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>

#include "runtime/checkpoint/checkpoint_file.h"
#include "runtime/base/errors.h"

namespace slim::checkpoint {

namespace fs = std::filesystem;

namespace {

const std::regex& CheckpointName() {
  static const std::regex name(R"(ckpt-(\d+)\.h5)");
  return name;
}

// DIRECTORY.replaced-<unix time>: where checkpoints that must not be resumed go.
std::string ReplacedName(const std::string& directory) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  return directory + ".replaced-" + std::to_string(seconds);
}

// The step in a checkpoint's file name.
int64_t StepOf(const std::string& path) {
  std::smatch match;
  const std::string name = fs::path(path).filename().string();
  std::regex_match(name, match, CheckpointName());
  return std::stoll(match[1].str());
}

[[noreturn]] void FailToMove(const std::string& from, const std::string& to,
                             const std::error_code& error) {
  throw OutputError("cannot move the old checkpoints " + from + " aside to " + to + ": " +
                    error.message() + "; move or delete them yourself");
}

}  // namespace

std::string CheckpointDirectory(const std::string& output_dir) {
  return (fs::path(output_dir) / "checkpoints").string();
}

std::string CheckpointPath(const std::string& directory, int64_t step) {
  return (fs::path(directory) / ("ckpt-" + std::to_string(step) + ".h5")).string();
}

std::vector<std::string> ListCheckpoints(const std::string& directory) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    std::smatch match;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, match, CheckpointName())) {
      found.emplace_back(std::stoll(match[1].str()), entry.path().string());
    }
  }
  std::sort(found.rbegin(), found.rend());
  std::vector<std::string> paths;
  for (auto& [step, path] : found) paths.push_back(std::move(path));
  return paths;
}

std::optional<LoadedCheckpoint> LoadNewestValid(const std::string& directory) {
  LoadedCheckpoint loaded;
  for (const auto& path : ListCheckpoints(directory)) {
    try {
      loaded.state = ReadCheckpointFile(path);
      loaded.path = path;
      return loaded;
    } catch (const DataError& e) {
      loaded.skipped.push_back(e.what());
    }
  }
  if (loaded.skipped.empty()) return std::nullopt;
  std::string message = "no valid checkpoint in " + directory + ":";
  for (const auto& reason : loaded.skipped) message += "\n  " + reason;
  throw DataError(message +
                  "\nRestore a checkpoint from a backup, or start over with --resume none "
                  "(the files are moved aside, not deleted)");
}

std::vector<std::string> PruneCheckpoints(const std::string& directory, int64_t keep,
                                          const std::string& newest) {
  std::vector<std::string> deleted;
  const auto paths = ListCheckpoints(directory);
  int64_t kept = 0;
  for (const auto& path : paths) {
    if (path == newest || kept < keep) {
      ++kept;
      continue;
    }
    std::error_code error;
    if (fs::remove(path, error)) deleted.push_back(path);
  }
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    if (entry.path().extension() == ".tmp" && fs::remove(entry.path(), error)) {
      deleted.push_back(entry.path().string());
    }
  }
  return deleted;
}

std::string MoveAsideCheckpoints(const std::string& directory) {
  std::error_code error;
  if (!fs::exists(directory, error)) return "";
  const std::string target = ReplacedName(directory);
  fs::rename(directory, target, error);
  if (error) FailToMove(directory, target, error);
  return target;
}

std::string MoveAsideLaterCheckpoints(const std::string& directory, int64_t step) {
  std::vector<std::string> later;
  for (const auto& path : ListCheckpoints(directory)) {
    if (StepOf(path) > step) later.push_back(path);
  }
  if (later.empty()) return "";
  const std::string target = ReplacedName(directory);
  std::error_code error;
  fs::create_directories(target, error);
  if (error) FailToMove(directory, target, error);
  for (const auto& path : later) {
    fs::rename(path, fs::path(target) / fs::path(path).filename(), error);
    if (error) FailToMove(path, target, error);
  }
  return target;
}

}  // namespace slim::checkpoint
