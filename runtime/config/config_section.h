// Typed, checked reading of one YAML mapping of a config file.
//
// Every read records the key as known and writes the effective value (the file's or the
// default) into a "resolved" tree, so config.resolved.yaml comes from the same code that
// parses, and RejectUnknownKeys() can name any key nobody asked for, with the nearest
// valid key as a suggestion. Errors are ConfigError with "file:line: Key.Path: problem".
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace slim::config {

class ConfigSection {
 public:
  // `node` is the mapping (or an undefined node when the section is absent), `path` its
  // dotted key path ("" at the top), `file` the config file for messages, `resolved` the
  // node the effective values are written to.
  ConfigSection(YAML::Node node, std::string path, std::string file, YAML::Node resolved);

  // True when the key is present in the file (or set with --set).
  bool Has(const std::string& key) const;
  // True when the key is written in the file, even with no value (`QuantAware:` whose keys
  // are all commented out).
  bool IsWritten(const std::string& key) const;
  // True when the key is present and holds a mapping; IsList: a list.
  bool IsMapping(const std::string& key) const;
  bool IsList(const std::string& key) const;

  // Optional scalar or list: the file's value converted to T, else `fallback`.
  // T: bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
  // std::vector<std::string>, std::vector<std::vector<std::string>> (where a plain string
  // element reads as a list of one).
  template <typename T>
  T Get(const std::string& key, const T& fallback);
  // Required scalar or list; throws ConfigError naming the key when absent.
  template <typename T>
  T Require(const std::string& key);
  // Get for a key that PaddleSlim ACT spells `alias`: the value of whichever is present,
  // recorded in the resolved tree under `key`. Throws ConfigError naming both when both
  // are present.
  template <typename T>
  T GetAliased(const std::string& key, const std::string& alias, const T& fallback);

  // Accepts `key`, which has no effect in SlimTrain: when it is written, records it as
  // known (it is not written to the resolved tree) and logs the warning
  // "file:line: Path.key: ignored: <why>".
  void Ignore(const std::string& key, const std::string& why);

  // The sub-mapping under `key` (empty when absent). Throws if present and not a mapping.
  ConfigSection Section(const std::string& key);
  // The mappings of the list under `key` (none when absent), as sections "key[i]". Throws
  // if present and not a list of mappings.
  std::vector<ConfigSection> Sections(const std::string& key);

  // The keys written in this mapping, in file order (a map whose keys are names, such as
  // per-layer ratios). Read their values with Get.
  std::vector<std::string> Keys() const;

  // Throws ConfigError for the first key present in the file that was never read, with
  // the nearest known key suggested. Call after reading everything this section allows.
  void RejectUnknownKeys() const;

  // Where `key` is, as messages start: "file:line: Path.key" (the section's line when
  // the key is absent, "file (or --set)" for a value from the command line).
  std::string Where(const std::string& key) const;

  // Throws ConfigError located at `key` ("file:line: Path.key: <problem>").
  [[noreturn]] void Fail(const std::string& key, const std::string& problem) const;

  // Checks `value` is one of `valid`; otherwise fails at `key`, suggesting the nearest.
  void CheckChoice(const std::string& key, const std::string& value,
                   const std::vector<std::string>& valid) const;

  // Checks `value` lies in [low, high]; otherwise fails at `key`.
  template <typename T>
  void CheckRange(const std::string& key, T value, T low, T high) const;

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

 private:
  std::string KeyPath(const std::string& key) const;
  std::string Location(const YAML::Node& node) const;
  template <typename T>
  T Convert(const std::string& key, const YAML::Node& value) const;

  YAML::Node node_;
  std::string path_;
  std::string file_;
  YAML::Node resolved_;
  std::shared_ptr<std::set<std::string>> known_keys_;
};

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(const std::string& a, const std::string& b);

// The candidate closest to `word`, or "" when none is reasonably close.
std::string NearestWord(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace slim::config
