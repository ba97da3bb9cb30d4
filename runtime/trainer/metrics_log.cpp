#include "runtime/trainer/metrics_log.h"

#include "runtime/errors.h"

namespace slim::trainer {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::trunc) {
  if (!out_) throw ConfigError("cannot write '" + path + "': check Global.output_dir");
}

void MetricsLog::Write(const nlohmann::json& event) {
  out_ << event.dump() << '\n';
  out_.flush();
  if (!out_) throw ConfigError("writing '" + path_ + "' failed: is the disk full?");
}

}  // namespace slim::trainer
