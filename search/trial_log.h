// The trial log of a search, hpo/trials.jsonl: one JSON object per finished trial, in the
// order the trials finished. It is rewritten whole and atomically after every trial, so
// a crash or kill -9 leaves the log of the trials finished before it, and a resumed
// search reads it back.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slim::search {

struct TrialRecord {
  int64_t trial = 0;
  nlohmann::json params;       // the point, as PointToJson writes it
  bool failed = false;         // no finite outputs; `failure` says why
  std::string failure;
  double objective = 0;        // minimised; unset (+inf) when failed
  double emd = 0;
  double top1 = 0;
  double top1_drop = 0;        // the float top-1 minus this trial's
  bool passed = true;          // within accuracy_criterion (true when none is set)
  int64_t state_bytes = 0;     // bytes of the quantized model's parameters and buffers
  double seconds = 0;          // calibration and scoring
  int group = 0;               // the rank group that ran it
  // The sampler had learnt from the first `learnt_from` trials of the log (those finished
  // before) when it proposed this one.
  int64_t learnt_from = 0;
};

nlohmann::json RecordToJson(const TrialRecord& record);
// Throws std::invalid_argument naming the missing or mistyped field.
TrialRecord RecordFromJson(const nlohmann::json& json);

// Rewrites `path` with `records`, atomically. Throws OutputError.
void WriteTrialLog(const std::string& path, const std::vector<TrialRecord>& records);

// The records of `path`; none when it does not exist. Throws DataError naming the file and
// line when a line is not a trial record.
std::vector<TrialRecord> ReadTrialLog(const std::string& path);

// The trial the search keeps: without a criterion (`has_criterion` false), the smallest objective; with one,
// among the trials that passed, the smallest model (state_bytes), then the smallest
// objective; when none passed, the smallest objective. Ties go to the earlier trial.
// nullopt when no trial finished without failing.
std::optional<size_t> ChosenTrial(const std::vector<TrialRecord>& records, bool has_criterion);

}  // namespace slim::search
