// metrics.jsonl: one JSON object per line, one line per logging or evaluation event.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace slim::trainer {

// Appends events to a JSON-lines file. Only the rank that writes outputs (rank 0) creates
// one. Each line is flushed as written, so a crash loses at most the line in progress.
class MetricsLog {
 public:
  // Creates or truncates `path`. Throws ConfigError when it cannot be written.
  explicit MetricsLog(const std::string& path);
  // Writes `event` as one line.
  void Write(const nlohmann::json& event);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace slim::trainer
