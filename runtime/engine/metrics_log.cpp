#include "runtime/engine/metrics_log.h"

#include <algorithm>

#include "runtime/base/errors.h"

namespace slim::engine {

namespace {

// The first `count` lines of `path` (fewer if it is shorter or missing).
std::string FirstLines(const std::string& path, int64_t count) {
  std::ifstream in(path);
  std::string kept, line;
  for (int64_t i = 0; i < count && std::getline(in, line); ++i) kept += line + '\n';
  return kept;
}

}  // namespace

MetricsLog::MetricsLog(const std::string& path, int64_t keep_lines) : path_(path) {
  const std::string kept = FirstLines(path, keep_lines);
  out_.open(path, std::ios::trunc);
  out_ << kept;
  if (!out_) throw OutputError("cannot write '" + path + "': check Global.output_dir");
  lines_ = std::count(kept.begin(), kept.end(), '\n');
}

void MetricsLog::Write(const nlohmann::json& event) {
  out_ << event.dump() << '\n';
  out_.flush();
  ++lines_;
  if (!out_) throw OutputError("writing '" + path_ + "' failed: is the disk full?");
}

}  // namespace slim::engine
