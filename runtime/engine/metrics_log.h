// metrics.jsonl: one JSON object per line, one line per logging or evaluation event.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace slim::engine {

// Appends events to a JSON-lines file. Only the rank that writes outputs (rank 0) creates
// one. Each line is flushed as written, so a crash loses at most the line in progress.
class MetricsLog {
 public:
  // Opens `path` keeping its first `keep_lines` lines (those a resumed checkpoint had
  // seen) and dropping the rest; 0 starts a new file. Throws ConfigError when it cannot
  // be written.
  MetricsLog(const std::string& path, int64_t keep_lines);
  // Writes `event` as one line.
  void Write(const nlohmann::json& event);
  // Lines in the file so far.
  int64_t LinesWritten() const { return lines_; }

 private:
  std::string path_;
  std::ofstream out_;
  int64_t lines_ = 0;
};

}  // namespace slim::engine
