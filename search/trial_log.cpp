#include "search/trial_log.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <tuple>

#include "runtime/base/errors.h"
#include "runtime/base/output_file.h"

namespace slim::search {

nlohmann::json RecordToJson(const TrialRecord& record) {
  nlohmann::json json = {{"trial", record.trial},   {"params", record.params},
                         {"failed", record.failed}, {"emd", record.emd},
                         {"top1", record.top1},     {"top1_drop", record.top1_drop},
                         {"passed", record.passed}, {"state_bytes", record.state_bytes},
                         {"seconds", record.seconds}, {"group", record.group},
                         {"learnt_from", record.learnt_from}};
  json["objective"] = record.failed ? nlohmann::json() : nlohmann::json(record.objective);
  if (record.failed) json["failure"] = record.failure;
  return json;
}

TrialRecord RecordFromJson(const nlohmann::json& json) {
  try {
    TrialRecord record;
    record.trial = json.at("trial").get<int64_t>();
    record.params = json.at("params");
    record.failed = json.at("failed").get<bool>();
    record.objective = record.failed ? std::numeric_limits<double>::infinity()
                                     : json.at("objective").get<double>();
    record.failure = json.value("failure", "");
    record.emd = json.at("emd").get<double>();
    record.top1 = json.at("top1").get<double>();
    record.top1_drop = json.at("top1_drop").get<double>();
    record.passed = json.at("passed").get<bool>();
    record.state_bytes = json.at("state_bytes").get<int64_t>();
    record.seconds = json.at("seconds").get<double>();
    record.group = json.at("group").get<int>();
    record.learnt_from = json.at("learnt_from").get<int64_t>();
    return record;
  } catch (const nlohmann::json::exception& error) {
    throw std::invalid_argument(error.what());
  }
}

void WriteTrialLog(const std::string& path, const std::vector<TrialRecord>& records) {
  std::string text;
  for (const auto& record : records) text += RecordToJson(record).dump() + "\n";
  files::WriteAtomically(path, text);
}

std::vector<TrialRecord> ReadTrialLog(const std::string& path) {
  std::vector<TrialRecord> records;
  if (!std::filesystem::exists(path)) return records;
  std::ifstream in(path);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    try {
      records.push_back(RecordFromJson(nlohmann::json::parse(line)));
    } catch (const std::exception& error) {
      throw DataError(fmt::format("{}:{}: not a trial record ({}); the search cannot resume "
                                  "from it: move the file away to start the search afresh",
                                  path, number, error.what()));
    }
  }
  return records;
}

std::optional<size_t> ChosenTrial(const std::vector<TrialRecord>& records,
                                  bool has_criterion) {
  bool any_passed = false;
  for (const auto& record : records) any_passed = any_passed || (!record.failed && record.passed);
  any_passed = any_passed && has_criterion;
  std::optional<size_t> chosen;
  const auto key = [&](const TrialRecord& record) {
    return any_passed ? std::make_tuple(record.state_bytes, record.objective)
                      : std::make_tuple(int64_t{0}, record.objective);
  };
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& record = records[i];
    if (record.failed || (any_passed && !record.passed)) continue;
    const auto& best = records[chosen.value_or(i)];
    if (!chosen || key(record) < key(best) ||
        (key(record) == key(best) && record.trial < best.trial)) {
      chosen = i;
    }
  }
  return chosen;
}

}  // namespace slim::search
